// percrec-bench: throughput benchmarks for percrec's hot paths.
//
// Usage: percrec-bench <subcommand> [options]
// Each benchmark prints one `name: value` line per figure on stdout and exits 1 if any
// packet failed. Arguments are parsed by hand (no ArgumentParser dependency).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One benchmark: a name, a one-line summary and an entry point returning the exit status.
/// Each benchmark is a file and one entry here.
struct BenchmarkCommand: Sendable {
    let name: String
    let summary: String
    let run: @Sendable ([String]) -> Int32

    static let all: [BenchmarkCommand] = [
        BenchmarkCommand(name: "srtp", summary: SRTPBenchmark.summary, run: { SRTPBenchmark.run($0) }),
        BenchmarkCommand(name: "ingest", summary: IngestBenchmark.summary, run: { IngestBenchmark.run($0) }),
        BenchmarkCommand(name: "export", summary: ExportBenchmark.summary, run: { ExportBenchmark.run($0) }),
    ]
}

func usage() -> String {
    let commands = BenchmarkCommand.all
    var text = "usage: percrec-bench <subcommand> [options]\n\nsubcommands:\n"
    for c in commands { text += "  " + c.name + String(repeating: " ", count: max(1, 9 - c.name.count)) + c.summary + "\n" }
    text += "\noptions (srtp):\n  --packets N   packets per measurement (default \(SRTPBenchmark.defaultPacketCount))\n"
    text += "  --passes N    timed passes per measurement; the best is reported (default \(SRTPBenchmark.defaultPasses))\n"
    text += "\n" + IngestBenchmark.usageText + "\n" + ExportBenchmark.usageText
    return text
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard let subcommand = arguments.first, let command = BenchmarkCommand.all.first(where: { $0.name == subcommand }) else {
    if let first = arguments.first, first == "-h" || first == "--help" || first == "help" {
        print(usage(), terminator: "")
        exit(0)
    }
    writeStderr((arguments.first.map { "percrec-bench: unknown subcommand '\($0)'\n\n" } ?? "") + usage())
    exit(2)
}
exit(command.run(Array(arguments.dropFirst())))
