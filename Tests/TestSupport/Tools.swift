import Foundation

/// What an external tool printed and how it exited.
public struct ToolResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs an external program (an independent oracle: openssl, python3, sqlite3, …) to the end.
/// `executable` is a path or a name looked up on PATH. The waiting happens on a thread of its
/// own, never on Swift concurrency's cooperative threads: a test blocked there for seconds
/// starves the timing-sensitive suites running beside it.
public func runTool(_ executable: String, _ arguments: [String], input: Data? = nil,
                    environment: [String: String]? = nil) async throws -> ToolResult {
    try await withCheckedThrowingContinuation { (done: CheckedContinuation<ToolResult, any Error>) in
        Thread.detachNewThread {
            done.resume(with: Result { try runToolBlocking(executable, arguments, input: input, environment: environment) })
        }
    }
}

/// Output is read on background threads so a chatty tool cannot block on a full pipe.
private func runToolBlocking(_ executable: String, _ arguments: [String], input: Data?,
                             environment: [String: String]?) throws -> ToolResult {
    let process = Process()
    if executable.contains("/") {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
    } else {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
    }
    if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let out = Pipe(), err = Pipe(), inp = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input == nil ? FileHandle.nullDevice : inp
    try process.run()
    let collected = CollectedOutput()
    let group = DispatchGroup()
    for (pipe, isOut) in [(out, true), (err, false)] {
        group.enter()
        DispatchQueue.global().async {
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            collected.set(data, stdout: isOut)
            group.leave()
        }
    }
    if let input {
        try? inp.fileHandleForWriting.write(contentsOf: input)
        try? inp.fileHandleForWriting.close()
    }
    process.waitUntilExit()
    group.wait()
    return ToolResult(status: process.terminationStatus, stdout: String(decoding: collected.stdout, as: UTF8.self),
                      stderr: String(decoding: collected.stderr, as: UTF8.self))
}

private final class CollectedOutput: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var stdout = Data(), stderr = Data()
    func set(_ data: Data, stdout isOut: Bool) {
        lock.lock(); defer { lock.unlock() }
        if isOut { stdout = data } else { stderr = data }
    }
}

/// A fresh empty directory under the system temp directory.
public func makeTemporaryDirectory(_ prefix: String = "percrec-test") -> String {
    let path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString.prefix(8))"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
