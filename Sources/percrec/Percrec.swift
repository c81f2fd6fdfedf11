import ArgumentParser
import Lab

@main
struct Percrec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "percrec",
        abstract: "Record end-to-end encrypted PERC conferences without decrypting them.",
        discussion: """
        Exit codes: 0 ok, 1 operational failure, 2 usage error, 3 unauthorized.
        """,
        version: "0.1.0",
        subcommands: [Demo.self, LabCommand.self, IdentityCommand.self, KDCommand.self, MDCommand.self, AuthorityCommand.self,
                      RecordCommand.self, ImportCommand.self, ListCommand.self, InspectCommand.self])
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the media-plane self-test: sender → Media Distributor → receiver with double SRTP and EKT.")

    func run() throws {
        var test = MediaPlaneSelfTest()
        test.run()
        let width = test.steps.map(\.actor.count).max() ?? 0
        for step in test.steps {
            let pad = String(repeating: " ", count: width - step.actor.count)
            print("\(step.ok ? "ok  " : "FAIL") \(step.actor)\(pad)  \(step.text)")
        }
        print(test.passed ? "media-plane self-test passed (\(test.steps.count) steps)" : "media-plane self-test FAILED")
        if !test.passed { throw ExitCode(1) }
    }
}
