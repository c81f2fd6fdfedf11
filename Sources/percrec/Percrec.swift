import ArgumentParser
import Lab

@main
struct Percrec: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "percrec",
        abstract: "Record end-to-end encrypted PERC conferences without decrypting them.",
        discussion: """
        Exit codes: 0 ok, 1 operational failure, 2 usage error, 3 unauthorized.
        """,
        version: "0.1.0",
        subcommands: [Demo.self, LabCommand.self, IdentityCommand.self, KDCommand.self, MDCommand.self, AuthorityCommand.self,
                      RecordCommand.self, ImportCommand.self, ListCommand.self, InspectCommand.self, ExportCommand.self, TokenCommand.self])
}
