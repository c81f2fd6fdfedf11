import Foundation
import Glibc
@testable import KeyExchange
import Net

// The `openssl` command line as an independent peer (s_server, s_client), shared by the DTLS
// and tunnel-TLS interop tests.

/// An `openssl` process with stdin held open (s_server and s_client quit on EOF) and stdout
/// collected for markers. `finish()` closes stdin, waits briefly, then kills it.
final class OpenSSLTool {
    static let path = "/usr/bin/openssl"
    static var available: Bool { FileManager.default.isExecutableFile(atPath: path) }

    let process = Process()
    private let stdin = Pipe(), stdout = Pipe()
    private(set) var output = ""

    /// `stderrToStdout`: s_client prints its handshake summary on stderr.
    init(_ arguments: [String], stderrToStdout: Bool = false) throws {
        process.executableURL = URL(fileURLWithPath: OpenSSLTool.path)
        process.arguments = arguments
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderrToStdout ? stdout : FileHandle.nullDevice
        try process.run()
    }

    func write(_ text: String) throws {
        try stdin.fileHandleForWriting.write(contentsOf: Data(text.utf8))
    }

    /// Reads stdout until `marker` and the rest of its line arrived; at EOF or after `limit`,
    /// whether the marker appeared at all.
    func readUntil(_ marker: String, within limit: Duration) -> Bool {
        let fd = stdout.fileHandleForReading.fileDescriptor
        let deadline = ContinuousClock.now + limit
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            if let r = output.range(of: marker), output[r.upperBound...].contains("\n") { return true }
            guard (try? Poller.wait(for: fd, interest: .read, timeout: .milliseconds(50)))?.isEmpty == false else { continue }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            output += String(decoding: buffer.prefix(n), as: UTF8.self)
        }
        return output.contains(marker)
    }

    /// The hex after "Keying material: " (printed with -keymatexport).
    var keyingMaterial: [UInt8]? {
        guard let line = output.split(separator: "\n").first(where: { $0.contains("Keying material: ") }),
              let hex = line.split(separator: ":").last else { return nil }
        return [UInt8](hexString: hex.trimmingCharacters(in: .whitespaces))
    }

    /// Closes stdin, gives the process `grace` to exit, then SIGKILLs it and reaps it. SIGKILL,
    /// not `terminate()`: a child spawned from a Swift concurrency thread inherits that
    /// thread's signal mask, in which SIGTERM is blocked.
    func finish(grace: Duration = .seconds(2)) {
        try? stdin.fileHandleForWriting.close()
        let deadline = ContinuousClock.now + grace
        while process.isRunning, ContinuousClock.now < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// Writes `identity` as cert.pem and key.pem (mode 0600) into a fresh temporary directory;
/// the copy of the key made for writing is wiped.
func writePEMFiles(_ identity: DTLSIdentity) throws -> (dir: URL, cert: String, key: String) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("percrec-pem-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let cert = dir.appendingPathComponent("cert.pem").path, key = dir.appendingPathComponent("key.pem").path
    try identity.certificatePEM.write(toFile: cert, atomically: true, encoding: .utf8)
    var keyBytes = identity.privateKeyPEM.unsafeCopiedBytes
    defer { TLSStream.cleanse(&keyBytes) }
    let fd = open(key, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw CocoaError(.fileWriteNoPermission) }
    defer { close(fd) }
    let written = keyBytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    guard written == keyBytes.count else { throw CocoaError(.fileWriteUnknown) }
    return (dir, cert, key)
}
