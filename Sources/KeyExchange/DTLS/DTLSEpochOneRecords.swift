internal import COpenSSL
import EKT
import SRTP

// The `ekt_key` message (RFC 8870 §5.2.2) outside OpenSSL.
//
// OpenSSL 3.0 has no API to send handshake type 26 and kills the association when one reaches
// it (notes §2). percrec therefore seals and opens those records itself: the DTLS 1.2 key block
// is derived from the session's master secret and randoms (RFC 5246 §6.3), and the records use
// AES-GCM as RFC 5288 §3 and RFC 6347 §4.1.2.1 describe. The sender numbers its records from
// `ownSequenceStart` upward, a range OpenSSL never reaches in epoch 1, so nonces never repeat.
// The receiver lifts `ekt_key` handshake records and ACK records (RFC 9147 §7, content type
// 26) out of each datagram before OpenSSL's read BIO sees it; everything else passes through.

/// The 13-byte DTLS 1.2 record header (RFC 6347 §4.1).
struct DTLSRecordHeader: Equatable {
    static let length = 13
    static let dtls12Version: UInt16 = 0xFEFD

    var contentType: UInt8
    var version: UInt16
    var epoch: UInt16
    /// 48-bit sequence number.
    var sequence: UInt64
    var fragmentLength: Int

    /// epoch ‖ sequence as one 64-bit number: the AEAD explicit nonce and the AAD's seq_num.
    var recordNumber: UInt64 { UInt64(epoch) << 48 | sequence }

    init(contentType: UInt8, version: UInt16 = dtls12Version, epoch: UInt16, sequence: UInt64, fragmentLength: Int) {
        self.contentType = contentType
        self.version = version
        self.epoch = epoch
        self.sequence = sequence & 0xFFFF_FFFF_FFFF
        self.fragmentLength = fragmentLength
    }

    /// Parses a header at `offset`; nil when fewer than 13 bytes remain.
    init?(_ bytes: [UInt8], at offset: Int) {
        guard offset >= 0, bytes.count - offset >= DTLSRecordHeader.length else { return nil }
        var seq: UInt64 = 0
        for i in 5 ..< 11 { seq = seq << 8 | UInt64(bytes[offset + i]) }
        self.init(contentType: bytes[offset],
                  version: UInt16(bytes[offset + 1]) << 8 | UInt16(bytes[offset + 2]),
                  epoch: UInt16(bytes[offset + 3]) << 8 | UInt16(bytes[offset + 4]),
                  sequence: seq,
                  fragmentLength: Int(bytes[offset + 11]) << 8 | Int(bytes[offset + 12]))
    }

    func write(to out: inout [UInt8]) {
        out.append(contentType)
        out.append(UInt8(version >> 8)); out.append(UInt8(truncatingIfNeeded: version))
        let number = recordNumber
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: number >> UInt64(shift))) }
        out.append(UInt8(fragmentLength >> 8)); out.append(UInt8(truncatingIfNeeded: fragmentLength))
    }

    /// RFC 5246 §6.2.3.3 additional data: seq_num ‖ type ‖ version ‖ length (of the plaintext).
    func additionalData(plaintextLength: Int) -> [UInt8] {
        var aad: [UInt8] = []
        aad.reserveCapacity(13)
        let number = recordNumber
        for shift in stride(from: 56, through: 0, by: -8) { aad.append(UInt8(truncatingIfNeeded: number >> UInt64(shift))) }
        aad.append(contentType)
        aad.append(UInt8(version >> 8)); aad.append(UInt8(truncatingIfNeeded: version))
        aad.append(UInt8(plaintextLength >> 8)); aad.append(UInt8(truncatingIfNeeded: plaintextLength))
        return aad
    }

    /// The whole records of a datagram, as byte ranges; a trailing partial record is not one.
    static func records(in datagram: [UInt8]) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var i = 0
        while let header = DTLSRecordHeader(datagram, at: i) {
            let end = i + length + header.fragmentLength
            guard end <= datagram.count else { break }
            ranges.append(i ..< end)
            i = end
        }
        return ranges
    }
}

/// DTLS content types percrec handles itself.
enum DTLSContentType {
    static let handshake: UInt8 = 22
    /// RFC 9147 §7 ACK (unrelated to handshake type 26).
    static let ack: UInt8 = 26
}

/// A DTLS handshake message in one fragment (RFC 6347 §4.2.2): msg_type, length (24 bits),
/// message_seq, fragment_offset = 0, fragment_length = length, body.
public struct DTLSHandshakeMessage: Equatable, Sendable {
    public static let headerLength = 12
    public var messageType: UInt8
    public var messageSequence: UInt16
    public var body: [UInt8]

    public init(messageType: UInt8, messageSequence: UInt16, body: [UInt8]) {
        self.messageType = messageType
        self.messageSequence = messageSequence
        self.body = body
    }

    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.headerLength + body.count)
        out.append(messageType)
        Self.append24(body.count, to: &out)
        out.append(UInt8(messageSequence >> 8)); out.append(UInt8(truncatingIfNeeded: messageSequence))
        Self.append24(0, to: &out)
        Self.append24(body.count, to: &out)
        out += body
        return out
    }

    /// Parses one unfragmented message filling `bytes` exactly; fragments are refused (percrec's
    /// ekt_key always fits one record).
    public init(parsing bytes: [UInt8]) throws(DTLSError) {
        guard bytes.count >= Self.headerLength else {
            throw .malformedRecord("handshake header needs \(Self.headerLength) bytes, got \(bytes.count)")
        }
        let length = Self.read24(bytes, 1)
        let offset = Self.read24(bytes, 6)
        let fragmentLength = Self.read24(bytes, 9)
        guard offset == 0, fragmentLength == length else {
            throw .malformedRecord("fragmented handshake message (offset \(offset), fragment \(fragmentLength) of \(length))")
        }
        guard bytes.count - Self.headerLength == length else {
            throw .malformedRecord("handshake body is \(bytes.count - Self.headerLength) bytes, header says \(length)")
        }
        messageType = bytes[0]
        messageSequence = UInt16(bytes[4]) << 8 | UInt16(bytes[5])
        body = Array(bytes[Self.headerLength...])
    }

    private static func append24(_ v: Int, to out: inout [UInt8]) {
        out.append(UInt8(truncatingIfNeeded: v >> 16)); out.append(UInt8(truncatingIfNeeded: v >> 8)); out.append(UInt8(truncatingIfNeeded: v))
    }
    private static func read24(_ b: [UInt8], _ i: Int) -> Int { Int(b[i]) << 16 | Int(b[i + 1]) << 8 | Int(b[i + 2]) }
}

/// The RFC 9147 §7 ACK body: `RecordNumber record_numbers<0..2^16-1>`, each an epoch and a
/// sequence number as two uint64.
public struct DTLSAck: Equatable, Sendable {
    public struct RecordNumber: Hashable, Sendable {
        public var epoch: UInt64
        public var sequence: UInt64
        public init(epoch: UInt64, sequence: UInt64) { self.epoch = epoch; self.sequence = sequence }
    }
    public var records: [RecordNumber]
    public init(records: [RecordNumber]) { self.records = records }

    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        let length = records.count * 16
        out.append(UInt8(truncatingIfNeeded: length >> 8)); out.append(UInt8(truncatingIfNeeded: length))
        for r in records {
            for v in [r.epoch, r.sequence] {
                for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
            }
        }
        return out
    }

    public init(parsing bytes: [UInt8]) throws(DTLSError) {
        guard bytes.count >= 2 else { throw .malformedRecord("ACK needs a 2-byte length, got \(bytes.count) bytes") }
        let length = Int(bytes[0]) << 8 | Int(bytes[1])
        guard length % 16 == 0, bytes.count == 2 + length else {
            throw .malformedRecord("ACK length \(length) does not match \(bytes.count - 2) bytes of 16-byte record numbers")
        }
        var records: [RecordNumber] = []
        var i = 2
        while i < bytes.count {
            var e: UInt64 = 0, s: UInt64 = 0
            for k in 0 ..< 8 { e = e << 8 | UInt64(bytes[i + k]) }
            for k in 8 ..< 16 { s = s << 8 | UInt64(bytes[i + k]) }
            records.append(RecordNumber(epoch: e, sequence: s))
            i += 16
        }
        self.records = records
    }
}

/// Epoch-1 AES-GCM record protection for one association, derived from OpenSSL's session.
/// Holds one sealing context (own write key) and one opening context (the peer's write key);
/// the key block is wiped as soon as the contexts hold their schedules.
final class DTLSEpochOneRecords {
    /// First record sequence number percrec uses in epoch 1: far above anything OpenSSL sends.
    static let ownSequenceStart: UInt64 = 0x8000_0000_0000
    static let explicitNonceLength = 8

    private let sealer: AESGCMCipher
    private let opener: AESGCMCipher
    private let ownIV: [UInt8]    // 4-byte implicit salt
    private let peerIV: [UInt8]
    private var nextSequence = DTLSEpochOneRecords.ownSequenceStart

    /// Derives the key block (RFC 5246 §6.3: client key, server key, client IV, server IV;
    /// AEAD suites have no MAC keys) from the session of `ssl`. Throws when the suite is not
    /// AES-GCM or the session has no master secret yet.
    init(ssl: OpaquePointer, role: DTLSRole) throws(DTLSError) {
        guard let session = SSL_get_session(ssl), let cipher = SSL_SESSION_get0_cipher(session) else {
            throw .epochOneKeys("no session or cipher yet")
        }
        let name = SSL_CIPHER_get_name(cipher).map { String(cString: $0) } ?? "?"
        let keyLength: Int, digest: String
        switch name {
        case "ECDHE-ECDSA-AES128-GCM-SHA256": (keyLength, digest) = (16, "SHA256")
        case "ECDHE-ECDSA-AES256-GCM-SHA384": (keyLength, digest) = (32, "SHA384")
        default: throw .epochOneKeys("cipher suite \(name) is not one percrec can seal ekt_key records with")
        }
        var master = [UInt8](repeating: 0, count: 48)
        let masterLength = master.withUnsafeMutableBufferPointer { SSL_SESSION_get_master_key(session, $0.baseAddress, 48) }
        var seed = [UInt8](repeating: 0, count: 64)   // server_random ‖ client_random
        let serverLength = seed.withUnsafeMutableBufferPointer { SSL_get_server_random(ssl, $0.baseAddress, 32) }
        let clientLength = seed.withUnsafeMutableBufferPointer { SSL_get_client_random(ssl, $0.baseAddress.map { $0 + 32 }, 32) }
        defer { master.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) } }
        guard masterLength == 48, serverLength == 32, clientLength == 32 else {
            throw .epochOneKeys("master secret or randoms not available (\(masterLength)/\(serverLength)/\(clientLength) bytes)")
        }
        let blockLength = 2 * keyLength + 8
        var block = [UInt8](repeating: 0, count: blockLength)
        defer { block.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) } }
        let derived = block.withUnsafeMutableBufferPointer { out in
            percrec_tls1_prf(digest, master, 48, "key expansion", seed, 64, out.baseAddress, blockLength)
        }
        guard derived == 1 else { throw .epochOneKeys(OpenSSLErrorQueue.drain(fallback: "TLS1-PRF failed")) }
        let clientKey = 0 ..< keyLength, serverKey = keyLength ..< 2 * keyLength
        let clientIV = 2 * keyLength ..< 2 * keyLength + 4, serverIV = 2 * keyLength + 4 ..< blockLength
        let (own, peer) = role == .client ? (clientKey, serverKey) : (serverKey, clientKey)
        do {
            sealer = try block[own].withUnsafeBytes { try AESGCMCipher(key: $0, sealing: true) }
            opener = try block[peer].withUnsafeBytes { try AESGCMCipher(key: $0, sealing: false) }
        } catch {
            throw .epochOneKeys("AES-GCM setup: \(error)")
        }
        ownIV = Array(block[role == .client ? clientIV : serverIV])
        peerIV = Array(block[role == .client ? serverIV : clientIV])
    }

    /// Seals `plaintext` into one epoch-1 record numbered from percrec's own range.
    func seal(contentType: UInt8, plaintext: [UInt8]) -> (record: [UInt8], number: DTLSAck.RecordNumber)? {
        let header = DTLSRecordHeader(contentType: contentType, epoch: 1, sequence: nextSequence,
                                      fragmentLength: Self.explicitNonceLength + plaintext.count + AESGCMCipher.tagLength)
        nextSequence += 1
        var explicit: [UInt8] = []
        for shift in stride(from: 56, through: 0, by: -8) { explicit.append(UInt8(truncatingIfNeeded: header.recordNumber >> UInt64(shift))) }
        let nonce = ownIV + explicit
        let aad = header.additionalData(plaintextLength: plaintext.count)
        var text = plaintext
        var tag = [UInt8](repeating: 0, count: AESGCMCipher.tagLength)
        let ok = nonce.withUnsafeBytes { iv in
            aad.withUnsafeBytes { a in
                text.withUnsafeMutableBytes { t in
                    tag.withUnsafeMutableBytes { g in sealer.seal(iv: iv.baseAddress!, aad1: a, text: t, tag: g.baseAddress!) }
                }
            }
        }
        guard ok else { return nil }
        var record: [UInt8] = []
        record.reserveCapacity(DTLSRecordHeader.length + header.fragmentLength)
        header.write(to: &record)
        record += explicit + text + tag
        return (record, DTLSAck.RecordNumber(epoch: 1, sequence: header.sequence))
    }

    /// Opens an epoch-1 AEAD record from the peer; nil when it does not authenticate.
    func open(_ datagram: [UInt8], record range: Range<Int>) -> (header: DTLSRecordHeader, plaintext: [UInt8])? {
        guard let header = DTLSRecordHeader(datagram, at: range.lowerBound), header.epoch == 1 else { return nil }
        let fragment = datagram[(range.lowerBound + DTLSRecordHeader.length) ..< range.upperBound]
        let textLength = fragment.count - Self.explicitNonceLength - AESGCMCipher.tagLength
        guard textLength >= 0 else { return nil }
        let nonce = peerIV + fragment.prefix(Self.explicitNonceLength)
        let aad = header.additionalData(plaintextLength: textLength)
        let textStart = fragment.startIndex + Self.explicitNonceLength
        var text = Array(fragment[textStart ..< textStart + textLength])
        let tag = Array(fragment.suffix(AESGCMCipher.tagLength))
        let ok = nonce.withUnsafeBytes { iv in
            aad.withUnsafeBytes { a in
                text.withUnsafeMutableBytes { t in
                    tag.withUnsafeBytes { g in opener.open(iv: iv.baseAddress!, aad1: a, text: t, tag: g.baseAddress!) }
                }
            }
        }
        return ok ? (header, text) : nil
    }
}
