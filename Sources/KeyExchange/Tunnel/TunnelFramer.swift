/// Splits the tunnel's TLS application-data stream into messages
/// (draft-ietf-perc-dtls-tunnel-12 §6.1: `msg_type`, uint16 `length`, body).
///
/// Feed whatever the TLS layer delivers with `append`, then call `next()` until it returns
/// nil. Every error consumes exactly the offending frame, so the stream stays in step and
/// the caller may go on or close the tunnel. Frames of an unknown type or over
/// `maximumMessageLength` are refused from their 3-byte header; their bodies are discarded
/// as they arrive, never buffered.
public struct TunnelFramer: Sendable {
    /// Largest accepted message, header included.
    public let maximumMessageLength: Int

    private var buffer: [UInt8] = []
    /// Bytes of `buffer` already consumed.
    private var consumed = 0
    /// Bytes of a refused frame's body still to drop from the input.
    private var toDiscard = 0

    /// `maximumMessageLength` must be 4 (the shortest message) ... 65538 (a full uint16 body).
    public init(maximumMessageLength: Int = TunnelMessage.maximumMessageLength) {
        precondition((TunnelMessage.headerLength + 1 ... TunnelMessage.maximumMessageLength).contains(maximumMessageLength),
                     "maximumMessageLength must be 4...65538")
        self.maximumMessageLength = maximumMessageLength
    }

    /// Bytes received but not yet returned as messages.
    public var bufferedByteCount: Int { buffer.count - consumed }

    public mutating func append(_ bytes: ArraySlice<UInt8>) {
        var input = bytes
        if toDiscard > 0 {
            let n = min(toDiscard, input.count)
            toDiscard -= n
            input = input.dropFirst(n)
        }
        guard !input.isEmpty else { return }
        if consumed > 0 && consumed * 2 >= buffer.count {
            buffer.removeFirst(consumed)
            consumed = 0
        }
        buffer.append(contentsOf: input)
    }

    public mutating func append(_ bytes: [UInt8]) {
        append(bytes[...])
    }

    /// The next complete message, or nil until more bytes arrive.
    public mutating func next() throws(TunnelError) -> TunnelMessage? {
        let available = buffer.count - consumed
        guard available >= TunnelMessage.headerLength else { return nil }
        let type = buffer[consumed]
        let bodyLength = Int(buffer[consumed + 1]) << 8 | Int(buffer[consumed + 2])
        let total = TunnelMessage.headerLength + bodyLength
        if TunnelMessageType(rawValue: type) == nil || total > maximumMessageLength {
            let present = min(total, available)
            consumed += present
            toDiscard = total - present
            compactIfEmpty()
            if TunnelMessageType(rawValue: type) == nil { throw .unknownMessageType(type) }
            throw .messageTooLong(length: total, maximum: maximumMessageLength)
        }
        guard available >= total else { return nil }
        let start = consumed + TunnelMessage.headerLength
        consumed += total
        let result: Result<TunnelMessage, TunnelError>
        do {
            result = .success(try TunnelMessage.parse(type: type, body: buffer[start ..< start + bodyLength]))
        } catch {
            result = .failure(error)
        }
        compactIfEmpty()  // after the body slice is gone, so the buffer is not copied
        return try result.get()
    }

    private mutating func compactIfEmpty() {
        if consumed == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 4096)
            consumed = 0
        }
    }
}
