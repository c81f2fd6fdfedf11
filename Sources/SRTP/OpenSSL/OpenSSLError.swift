internal import COpenSSL

/// OpenSSL's per-thread error queue, read as text for typed errors.
public enum OpenSSLErrorQueue {
    /// Drains the queue into one line (entries joined by "; "); `fallback` if it was empty.
    public static func drain(fallback: String) -> String {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buf, buf.count)
            messages.append(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return messages.isEmpty ? fallback : messages.joined(separator: "; ")
    }

    /// Empties the queue so that a later failure reports only its own errors.
    public static func clear() { ERR_clear_error() }
}

/// "`what`: <OpenSSL's errors>", or just `what` when the queue was empty.
func openSSLErrorText(_ what: String) -> String {
    let text = OpenSSLErrorQueue.drain(fallback: "")
    return text.isEmpty ? what : "\(what): \(text)"
}
