/// The header extension block of an RTP packet: profile value and raw body (RFC 3550 §5.3.1).
///
/// The body is kept verbatim, so any block (RFC 8285 or not, padded however) round-trips byte
/// for byte. `elements` reads it per RFC 8285 when the profile names one of its two forms.
///
/// ```
///  bytes 0-1  "defined by profile": 0xBEDE one-byte form, 0x100a two-byte form (a = appbits)
///  bytes 2-3  body length in 32-bit words (0 allowed)
///  then       the body, 4 × length bytes
/// ```
public struct RTPHeaderExtension: Sendable, Equatable {
    /// Profile value of the one-byte form (RFC 8285 §4.2).
    public static let oneByteProfile: UInt16 = 0xBEDE
    /// Profile value of the two-byte form with appbits 0 (RFC 8285 §4.3); the low 4 bits are appbits.
    public static let twoByteProfile: UInt16 = 0x1000
    static let twoByteProfileMask: UInt16 = 0xFFF0
    static let maxBodyBytes = 4 * Int(UInt16.max)

    /// The 16-bit "defined by profile" field.
    public let profile: UInt16
    /// The body after the 4-byte extension header; its length is a multiple of 4.
    public let body: [UInt8]

    /// Which RFC 8285 element format a profile value selects.
    public enum Form: Sendable, Equatable {
        /// One-byte headers: 4-bit ID, 4-bit length − 1 (RFC 8285 §4.2).
        case oneByte
        /// Two-byte headers: 8-bit ID, 8-bit length; `appBits` from the profile's low nibble (RFC 8285 §4.3).
        case twoByte(appBits: UInt8)
    }

    /// Wraps a raw block. Throws `.invalidLength(field: .extensionBody, …)` unless the body is a
    /// whole number of 32-bit words, at most 65535 of them.
    public init(profile: UInt16, body: [UInt8]) throws(RTPParseError) {
        guard body.count % 4 == 0, body.count <= Self.maxBodyBytes else {
            throw .invalidLength(field: .extensionBody, value: body.count)
        }
        self.profile = profile
        self.body = body
    }

    /// For parsers that have read `body` as exactly 4 × (16-bit length) bytes.
    init(uncheckedProfile profile: UInt16, body: [UInt8]) {
        self.profile = profile
        self.body = body
    }

    /// The RFC 8285 form selected by `profile`, or `nil` for any other profile.
    public var form: Form? {
        if profile == Self.oneByteProfile { return .oneByte }
        if profile & Self.twoByteProfileMask == Self.twoByteProfile { return .twoByte(appBits: UInt8(profile & 0x0F)) }
        return nil
    }

    /// Bytes `write(to:)` appends: 4 + body.
    public var serializedSize: Int { 4 + body.count }

    /// Appends the 4-byte extension header and the body.
    public func write(to out: inout [UInt8]) {
        out.appendBigEndian(profile)
        out.appendBigEndian(UInt16(truncatingIfNeeded: body.count / 4))
        out.append(contentsOf: body)
    }

    // MARK: Elements (RFC 8285)

    /// The elements of the block, in order (RFC 8285 §4.2, §4.3).
    ///
    /// ```
    ///  one-byte element   [ID:4 | L:4] then L+1 data bytes   (ID 1...14)
    ///  two-byte element   [ID:8] [L:8] then L data bytes     (ID 1...255, L may be 0)
    /// ```
    /// A 0x00 byte between or after elements is padding and is skipped. In the one-byte form,
    /// ID 15 ends parsing (its length is ignored), as does an ID 0 byte with a non-zero length;
    /// elements before it are kept. An element running past the body throws
    /// `.extensionElementOverrun`. Any other profile throws `.invalidValue(field: .extensionHeader, …)`.
    public var elements: [RTPHeaderExtensionElement] {
        get throws(RTPParseError) {
            var found: [RTPHeaderExtensionElement] = []
            try forEachElement { id, range in
                found.append(RTPHeaderExtensionElement(id: id, data: Array(body[range])))
                return true
            }
            return found
        }
    }

    /// The data of the first element with `id`, or `nil` if there is none before parsing stops or fails.
    public func element(id: UInt8) -> [UInt8]? {
        var match: [UInt8]?
        do {
            try forEachElement { elementID, range in
                if elementID == id { match = Array(body[range]); return false }
                return true
            }
        } catch {
            // A malformed element after the search point does not hide earlier matches; `match` is nil otherwise.
        }
        return match
    }

    /// The RFC 6464 audio level in the element with `id`, or `nil` if it is absent or empty.
    public func audioLevel(id: UInt8) -> RTPAudioLevel? {
        guard let data = element(id: id), let first = data.first else { return nil }
        return RTPAudioLevel(byte: first)
    }

    /// Walks the elements, calling `visit(id, dataRange)` until it returns `false`.
    private func forEachElement(_ visit: (UInt8, Range<Int>) -> Bool) throws(RTPParseError) {
        guard let form else {
            let hex = String(profile, radix: 16)
            throw .invalidValue(field: .extensionHeader, reason: "profile 0x\(hex) is not an RFC 8285 one-byte or two-byte form")
        }
        let n = body.count
        var i = 0
        switch form {
        case .oneByte:
            while i < n {
                let header = body[i]
                if header == 0 { i += 1; continue }
                let id = header >> 4
                // ID 15: stop here (RFC 8285 §4.2). ID 0 with a length: stop too (srtp.md §1.2).
                if id == 15 || id == 0 { return }
                let length = Int(header & 0x0F) + 1
                guard length <= n - i - 1 else {
                    throw .extensionElementOverrun(id: Int(id), needed: 1 + length, available: n - i)
                }
                if !visit(id, i + 1 ..< i + 1 + length) { return }
                i += 1 + length
            }
        case .twoByte:
            while i < n {
                let id = body[i]
                if id == 0 { i += 1; continue }
                guard i + 1 < n else {
                    throw .extensionElementOverrun(id: Int(id), needed: 2, available: n - i)
                }
                let length = Int(body[i + 1])
                guard length <= n - i - 2 else {
                    throw .extensionElementOverrun(id: Int(id), needed: 2 + length, available: n - i)
                }
                if !visit(id, i + 2 ..< i + 2 + length) { return }
                i += 2 + length
            }
        }
    }

    // MARK: Builders

    /// Builds a one-byte-form block (profile 0xBEDE), zero-padded to a 32-bit boundary (RFC 8285 §4.2).
    ///
    /// Throws `.reservedExtensionID` for ID 0 or 15, `.invalidValue` for IDs above 15 or data
    /// outside 1...16 bytes.
    public static func oneByte(_ elements: [RTPHeaderExtensionElement]) throws(RTPParseError) -> RTPHeaderExtension {
        var body: [UInt8] = []
        for element in elements {
            switch element.id {
            case 0, 15: throw .reservedExtensionID(Int(element.id))
            case 1 ... 14: break
            default: throw .invalidValue(field: .extensionBody, reason: "one-byte element ID \(element.id) is above 14")
            }
            guard (1 ... 16).contains(element.data.count) else {
                throw .invalidValue(field: .extensionBody, reason: "one-byte element \(element.id) carries \(element.data.count) bytes, must be 1...16")
            }
            body.append(element.id << 4 | UInt8(element.data.count - 1))
            body.append(contentsOf: element.data)
        }
        return try padded(profile: oneByteProfile, body: body)
    }

    /// Builds a two-byte-form block (profile 0x1000 | appBits), zero-padded to a 32-bit boundary (RFC 8285 §4.3).
    ///
    /// Throws `.reservedExtensionID(0)` for ID 0, `.invalidValue` for data over 255 bytes or appBits over 15.
    public static func twoByte(_ elements: [RTPHeaderExtensionElement], appBits: UInt8 = 0) throws(RTPParseError) -> RTPHeaderExtension {
        guard appBits <= 0x0F else {
            throw .invalidValue(field: .extensionHeader, reason: "appbits \(appBits) do not fit in 4 bits")
        }
        var body: [UInt8] = []
        for element in elements {
            guard element.id != 0 else { throw .reservedExtensionID(0) }
            guard element.data.count <= 255 else {
                throw .invalidValue(field: .extensionBody, reason: "two-byte element \(element.id) carries \(element.data.count) bytes, must be 0...255")
            }
            body.append(element.id)
            body.append(UInt8(element.data.count))
            body.append(contentsOf: element.data)
        }
        return try padded(profile: twoByteProfile | UInt16(appBits), body: body)
    }

    private static func padded(profile: UInt16, body: [UInt8]) throws(RTPParseError) -> RTPHeaderExtension {
        var body = body
        body.appendZeros((4 - body.count % 4) % 4)
        return try RTPHeaderExtension(profile: profile, body: body)
    }
}

/// One RFC 8285 header extension element: a local ID and its data (RFC 8285 §4).
public struct RTPHeaderExtensionElement: Sendable, Equatable {
    /// Local identifier: 1...14 in the one-byte form, 1...255 in the two-byte form.
    public var id: UInt8
    public var data: [UInt8]

    /// Any ID and data; the builders `RTPHeaderExtension.oneByte`/`twoByte` check the limits.
    public init(id: UInt8, data: [UInt8]) {
        self.id = id
        self.data = data
    }
}

/// The client-to-mixer audio level element's one data byte (RFC 6464 §3).
///
/// ```
///  bit 7      V: the sender's voice-activity flag
///  bits 6-0   level: 0...127, meaning −level dBov (127 = silence)
/// ```
public struct RTPAudioLevel: Sendable, Equatable {
    public var voiceActivity: Bool
    /// Level as positive dBov attenuation, 0...127.
    public var level: UInt8

    /// Throws `.invalidValue(field: .extensionBody, …)` if `level` exceeds 127.
    public init(voiceActivity: Bool, level: UInt8) throws(RTPParseError) {
        guard level <= 127 else {
            throw .invalidValue(field: .extensionBody, reason: "audio level \(level) above 127")
        }
        self.voiceActivity = voiceActivity
        self.level = level
    }

    /// Reads the element's data byte.
    public init(byte: UInt8) {
        voiceActivity = byte & 0x80 != 0
        level = byte & 0x7F
    }

    /// Reads the first byte of an element's data; throws `.truncated(field: .extensionBody, …)` if empty.
    public init(elementData: [UInt8]) throws(RTPParseError) {
        guard let first = elementData.first else { throw .truncated(field: .extensionBody, needed: 1, available: 0) }
        self.init(byte: first)
    }

    /// The element's data byte.
    public var byte: UInt8 { (voiceActivity ? 0x80 : 0) | (level & 0x7F) }

    /// An element with this level under `id`, for the builders.
    public func element(id: UInt8) -> RTPHeaderExtensionElement {
        RTPHeaderExtensionElement(id: id, data: [byte])
    }
}
