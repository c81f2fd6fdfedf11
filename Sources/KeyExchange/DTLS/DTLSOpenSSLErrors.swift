internal import COpenSSL

/// Drains OpenSSL's (per-thread) error queue into one line; `fallback` if it was empty.
func dtlsOpenSSLErrorText(_ fallback: String) -> String {
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

/// Empties OpenSSL's error queue so that a later failure reports only its own errors.
func dtlsClearOpenSSLErrors() {
    ERR_clear_error()
}
