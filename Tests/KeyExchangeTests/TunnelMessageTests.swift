import Testing
import TestSupport
import SRTP
import KeyExchange

// DTLS tunnel messages, draft-ietf-perc-dtls-tunnel-12 §6 (layouts) and §7 (example).

/// One message and its wire form. The hex is written by hand from the §6 layouts (field by
/// field, lengths counted by hand in the comment next to each vector), not produced by the
/// code under test.
struct TunnelWireVector: CustomTestStringConvertible, Sendable {
    var name: String
    var wire: String
    var build: @Sendable () throws -> TunnelMessage
    var testDescription: String { name }
    var bytes: [UInt8] { hex(wire) }
}

enum TunnelSamples {
    /// Association ids used below. The first is a hand-made version 4 UUID (byte 6 = 0x46,
    /// byte 8 = 0x88), the second the well-known example UUID f47ac10b-…
    static let assocA = "00112233445546778899aabbccddeeff"
    static let assocB = "f47ac10b58cc4372a5670e02b2c3d479"

    static func association(_ hexText: String) throws -> AssociationID {
        try AssociationID(bytes: hex(hexText))
    }

    static func secret(_ hexText: String) -> SecretBytes { SecretBytes(hex(hexText)) }

    static let vectors: [TunnelWireVector] = [
        // §7: type 01, length 0007, version 00, list length 0004, 0009 000A.
        TunnelWireVector(name: "SupportedProfiles [0x0009, 0x000A] (draft §7 example)",
                   wire: "01 0007 00 0004 0009 000A") {
            .supportedProfiles(try .init(protectionProfiles: [0x0009, 0x000A]))
        },
        // body = version 1 + list length 2 + one profile 2 = 5.
        TunnelWireVector(name: "SupportedProfiles [0x0001]",
                   wire: "01 0005 00 0002 0001") {
            .supportedProfiles(try .init(protectionProfiles: [0x0001]))
        },
        // body = 1 + 2 + 3 * 2 = 9; order is kept as given.
        TunnelWireVector(name: "SupportedProfiles [0x0009, 0x000A, 0x0007]",
                   wire: "01 0009 00 0006 0009 000A 0007") {
            .supportedProfiles(try .init(protectionProfiles: [0x0009, 0x000A, 0x0007]))
        },
        // body = highest_version only: 1 byte; 4 bytes in all (§5.5).
        TunnelWireVector(name: "UnsupportedVersion 0", wire: "02 0001 00") {
            .unsupportedVersion(.init(highestVersion: 0))
        },
        TunnelWireVector(name: "UnsupportedVersion 7", wire: "02 0001 07") {
            .unsupportedVersion(.init(highestVersion: 7))
        },
        // body = id 16 + profile 2 + mki len 1 + (1 + 16) * 2 keys + (1 + 12) * 2 salts = 79 = 0x4F.
        // HBH halves of DOUBLE_AEAD_AES_128_GCM: 16-byte keys, 12-byte salts.
        TunnelWireVector(name: "MediaKeys 0x0009, no MKI",
                   wire: """
                   03 004F
                   00112233445546778899aabbccddeeff
                   0009
                   00
                   10 000102030405060708090a0b0c0d0e0f
                   10 101112131415161718191a1b1c1d1e1f
                   0c 202122232425262728292a2b
                   0c 303132333435363738393a3b
                   """) {
            .mediaKeys(try .init(associationID: try TunnelSamples.association(TunnelSamples.assocA), protectionProfile: 0x0009,
                                 clientWriteMasterKey: TunnelSamples.secret("000102030405060708090a0b0c0d0e0f"),
                                 serverWriteMasterKey: TunnelSamples.secret("101112131415161718191a1b1c1d1e1f"),
                                 clientWriteMasterSalt: TunnelSamples.secret("202122232425262728292a2b"),
                                 serverWriteMasterSalt: TunnelSamples.secret("303132333435363738393a3b")))
        },
        // body = 16 + 2 + (1 + 2) mki + (1 + 32) * 2 + (1 + 12) * 2 = 113 = 0x71.
        // HBH halves of DOUBLE_AEAD_AES_256_GCM: 32-byte keys, 12-byte salts.
        TunnelWireVector(name: "MediaKeys 0x000A, MKI dead",
                   wire: """
                   03 0071
                   f47ac10b58cc4372a5670e02b2c3d479
                   000A
                   02 dead
                   20 1111111111111111111111111111111111111111111111111111111111111111
                   20 2222222222222222222222222222222222222222222222222222222222222222
                   0c 333333333333333333333333
                   0c 444444444444444444444444
                   """) {
            .mediaKeys(try .init(associationID: try TunnelSamples.association(TunnelSamples.assocB), protectionProfile: 0x000A, mki: [0xDE, 0xAD],
                                 clientWriteMasterKey: SecretBytes([UInt8](repeating: 0x11, count: 32)),
                                 serverWriteMasterKey: SecretBytes([UInt8](repeating: 0x22, count: 32)),
                                 clientWriteMasterSalt: SecretBytes([UInt8](repeating: 0x33, count: 12)),
                                 serverWriteMasterSalt: SecretBytes([UInt8](repeating: 0x44, count: 12))))
        },
        // dtls_message = a 14-byte record (13-byte DTLS 1.2 header + 1); body = 16 + 2 + 14 = 32 = 0x20.
        TunnelWireVector(name: "TunneledDtls, one 14-byte record",
                   wire: "04 0020 00112233445546778899aabbccddeeff 000e 16fefd 0000 000000000000 0001 01") {
            .tunneledDtls(try .init(associationID: try TunnelSamples.association(TunnelSamples.assocA),
                                    dtlsMessage: hex("16fefd0000000000000000000101")))
        },
        // body = 16 + 2 + 1 = 19 = 0x13.
        TunnelWireVector(name: "TunneledDtls, one byte",
                   wire: "04 0013 f47ac10b58cc4372a5670e02b2c3d479 0001 ff") {
            .tunneledDtls(try .init(associationID: try TunnelSamples.association(TunnelSamples.assocB), dtlsMessage: [0xFF]))
        },
        // body = association_id only: 16 = 0x10.
        TunnelWireVector(name: "EndpointDisconnect",
                   wire: "05 0010 00112233445546778899aabbccddeeff") {
            .endpointDisconnect(.init(associationID: try TunnelSamples.association(TunnelSamples.assocA)))
        },
    ]

    /// Every sample, back to back, as one TLS stream.
    static var stream: [UInt8] { vectors.flatMap(\.bytes) }
    static func messages() throws -> [TunnelMessage] { try vectors.map { try $0.build() } }
}

@Suite("Tunnel: draft example encoding (§7)")
struct TunnelDraftExampleTests {
    static let example = hex("0100070000040009000A")

    @Test("SupportedProfiles{0, [0x0009, 0x000A]} serializes to 0x0100070000040009000A")
    func serializesExample() throws {
        let message = TunnelMessage.supportedProfiles(try .init(version: 0, protectionProfiles: [0x0009, 0x000A]))
        #expect(message.serialized() == Self.example)
        #expect(message.serializedSize == 10)
    }

    @Test("0x0100070000040009000A parses to version 0 with profiles 0x0009 and 0x000A")
    func parsesExample() throws {
        guard case let .supportedProfiles(body) = try TunnelMessage(parsing: Self.example) else {
            Issue.record("not SupportedProfiles")
            return
        }
        #expect(body.version == 0)
        #expect(body.protectionProfiles == [0x0009, 0x000A])
    }
}

@Suite("Tunnel: byte-exact encodings of every message type")
struct TunnelEncodingTests {
    @Test("serializes to the hand-computed bytes", arguments: TunnelSamples.vectors)
    func serializes(_ v: TunnelWireVector) throws {
        let message = try v.build()
        #expect(message.serialized() == v.bytes)
        #expect(message.serializedSize == v.bytes.count)
        var out: [UInt8] = [0xAA]
        message.write(to: &out)
        #expect(out == [0xAA] + v.bytes)
    }

    @Test("parses the hand-computed bytes to the same message and back", arguments: TunnelSamples.vectors)
    func parses(_ v: TunnelWireVector) throws {
        let parsed = try TunnelMessage(parsing: v.bytes)
        #expect(parsed == (try v.build()))
        #expect(parsed.serialized() == v.bytes)
        #expect(try TunnelMessage(parsing: ArraySlice([0x99] + v.bytes + [0x99]).dropFirst().dropLast()) == parsed)
    }

    @Test("every type byte is the draft's code point", arguments: [
        (TunnelMessageType.supportedProfiles, UInt8(1)), (.unsupportedVersion, 2), (.mediaKeys, 3),
        (.tunneledDtls, 4), (.endpointDisconnect, 5),
    ])
    func codePoints(type: TunnelMessageType, code: UInt8) throws {
        #expect(type.rawValue == code)
        let sample = try #require(TunnelSamples.vectors.first { $0.bytes[0] == code })
        #expect(try sample.build().messageType == type)
    }

    @Test("per-association messages expose their association id, per-tunnel ones do not")
    func associationAccessor() throws {
        let ids = try TunnelSamples.messages().map(\.associationID)
        let a = try TunnelSamples.association(TunnelSamples.assocA), b = try TunnelSamples.association(TunnelSamples.assocB)
        #expect(ids == [nil, nil, nil, nil, nil, a, b, a, b, a])
    }

    @Test("MediaKeys prints no key or salt bytes")
    func mediaKeysRedacted() throws {
        let text = String(describing: try TunnelSamples.vectors[5].build())
        #expect(text.contains("redacted"))
        #expect(!text.contains("0a0b0c"))
        #expect(!text.contains("303132"))
    }
}

@Suite("Tunnel: field limits on construction")
struct TunnelConstructionTests {
    @Test("SupportedProfiles needs 1...32766 profiles (list 2...65532 bytes, body fits uint16)",
          arguments: [0, 32767])
    func profileCountRefused(count: Int) {
        #expect(throws: TunnelError.invalidVectorLength(field: .protectionProfiles, length: count * 2, allowed: 2...65532)) {
            try TunnelMessage.SupportedProfiles(protectionProfiles: [UInt16](repeating: 9, count: count))
        }
    }

    @Test("32766 profiles make a 65538-byte message that parses back")
    func largestSupportedProfiles() throws {
        let profiles = (0 ..< 32766).map { UInt16(truncatingIfNeeded: $0) }
        let message = TunnelMessage.supportedProfiles(try .init(protectionProfiles: profiles))
        let bytes = message.serialized()
        #expect(bytes.count == TunnelMessage.maximumMessageLength)
        #expect(Array(bytes.prefix(6)) == hex("01 FFFF 00 FFFC"))
        #expect(try TunnelMessage(parsing: bytes) == message)
    }

    @Test("TunneledDtls needs 1...65517 DTLS bytes", arguments: [0, 65518])
    func dtlsLengthRefused(count: Int) throws {
        let id = try TunnelSamples.association(TunnelSamples.assocA)
        #expect(throws: TunnelError.invalidVectorLength(field: .dtlsMessage, length: count, allowed: 1...65517)) {
            try TunnelMessage.TunneledDtls(associationID: id, dtlsMessage: [UInt8](repeating: 0x17, count: count))
        }
    }

    @Test("65517 DTLS bytes make a 65538-byte message that parses back")
    func largestTunneledDtls() throws {
        let message = TunnelMessage.tunneledDtls(try .init(associationID: try TunnelSamples.association(TunnelSamples.assocB),
                                                           dtlsMessage: [UInt8](repeating: 0x17, count: 65517)))
        let bytes = message.serialized()
        #expect(bytes.count == 65538)
        #expect(Array(bytes.prefix(3)) == hex("04 FFFF"))
        #expect(try TunnelMessage(parsing: bytes) == message)
    }

    @Test("MediaKeys refuses an MKI over 255 bytes")
    func mkiTooLong() throws {
        let id = try TunnelSamples.association(TunnelSamples.assocA), k = TunnelSamples.secret("00")
        #expect(throws: TunnelError.invalidVectorLength(field: .mki, length: 256, allowed: 0...255)) {
            try TunnelMessage.MediaKeys(associationID: id, protectionProfile: 9, mki: [UInt8](repeating: 1, count: 256),
                                        clientWriteMasterKey: k, serverWriteMasterKey: k,
                                        clientWriteMasterSalt: k, serverWriteMasterSalt: k)
        }
    }

    @Test("MediaKeys refuses a key or salt of 0 or 256 bytes, naming the field", arguments: [
        (0, 0), (1, 0), (2, 0), (3, 0), (0, 256), (3, 256),
    ])
    func keyingLengthRefused(position: Int, length: Int) throws {
        let fields: [TunnelField] = [.clientWriteMasterKey, .serverWriteMasterKey, .clientWriteMasterSalt, .serverWriteMasterSalt]
        var values = [TunnelSamples.secret("01"), TunnelSamples.secret("02"), TunnelSamples.secret("03"), TunnelSamples.secret("04")]
        values[position] = SecretBytes([UInt8](repeating: 5, count: length))
        let id = try TunnelSamples.association(TunnelSamples.assocA)
        #expect(throws: TunnelError.invalidVectorLength(field: fields[position], length: length, allowed: 1...255)) {
            try TunnelMessage.MediaKeys(associationID: id, protectionProfile: 9,
                                        clientWriteMasterKey: values[0], serverWriteMasterKey: values[1],
                                        clientWriteMasterSalt: values[2], serverWriteMasterSalt: values[3])
        }
    }
}

@Suite("Tunnel: association identifier (§5.3, RFC 4122 §4.4)")
struct AssociationIDTests {
    @Test("bytes, canonical text and back")
    func textForm() throws {
        let id = try TunnelSamples.association(TunnelSamples.assocA)
        #expect(id.bytes == hex(TunnelSamples.assocA))
        #expect(id.description == "00112233-4455-4677-8899-aabbccddeeff")
        #expect(AssociationID(uuidString: "00112233-4455-4677-8899-AABBCCDDEEFF") == id)
        #expect(id.isRandomUUID)
        #expect(try !TunnelSamples.association("00000000000000000000000000000000").isRandomUUID)
    }

    @Test("malformed UUID text is nil", arguments: [
        "", "00112233445546778899aabbccddeeff", "00112233-4455-4677-8899-aabbccddeef",
        "00112233-4455-4677-8899_aabbccddeeff", "0011223g-4455-4677-8899-aabbccddeeff",
    ])
    func badText(_ text: String) {
        #expect(AssociationID(uuidString: text) == nil)
    }

    @Test("not 16 bytes is a typed error", arguments: [0, 15, 17])
    func wrongLength(count: Int) {
        #expect(throws: TunnelError.invalidVectorLength(field: .associationID, length: count, allowed: 16...16)) {
            try AssociationID(bytes: [UInt8](repeating: 0, count: count))
        }
    }

    @Test("random ids are version 4, RFC 4122 variant, and differ")
    func randomIDs() {
        var rng = SplitMix64(seed: 4122)
        let ids = (0 ..< 200).map { _ in AssociationID.random(using: &rng) } + [AssociationID.random()]
        #expect(ids.allSatisfy { $0.isRandomUUID })
        #expect(Set(ids).count == ids.count)
    }
}

/// A malformed input and the error it must give.
struct TunnelBadInput: CustomTestStringConvertible, Sendable {
    var name: String
    var wire: String
    var error: TunnelError
    var testDescription: String { name }
}

@Suite("Tunnel: parse errors are typed and precise")
struct TunnelParseErrorTests {
    static let cases: [TunnelBadInput] = [
        TunnelBadInput(name: "empty input", wire: "", error: .truncated(field: .messageType, needed: 1, available: 0)),
        TunnelBadInput(name: "reserved type 0", wire: "00 0000", error: .unknownMessageType(0)),
        TunnelBadInput(name: "unassigned type 6", wire: "06 0001 00", error: .unknownMessageType(6)),
        TunnelBadInput(name: "type 255 alone", wire: "ff", error: .unknownMessageType(255)),
        TunnelBadInput(name: "half a length", wire: "01 00", error: .truncated(field: .length, needed: 3, available: 2)),
        TunnelBadInput(name: "body shorter than length", wire: "01 0007 00 0004 0009",
                 error: .truncated(field: .body, needed: 10, available: 8)),
        TunnelBadInput(name: "version 1", wire: "01 0007 01 0004 0009 000A", error: .unsupportedVersion(1)),
        TunnelBadInput(name: "empty SupportedProfiles body", wire: "01 0000",
                 error: .truncated(field: .version, needed: 4, available: 3)),
        TunnelBadInput(name: "empty profile list", wire: "01 0003 00 0000",
                 error: .invalidVectorLength(field: .protectionProfiles, length: 0, allowed: 2...65532)),
        TunnelBadInput(name: "odd profile list", wire: "01 0006 00 0003 000900",
                 error: .misalignedVector(field: .protectionProfiles, length: 3, elementSize: 2)),
        TunnelBadInput(name: "profile list past the body", wire: "01 0005 00 0004 0009",
                 error: .truncated(field: .protectionProfiles, needed: 10, available: 8)),
        TunnelBadInput(name: "byte after the profile list", wire: "01 0006 00 0002 0009 ff",
                 error: .trailingBytes(after: .protectionProfiles, count: 1)),
        TunnelBadInput(name: "byte after the message", wire: "01 0007 00 0004 0009 000A 00",
                 error: .trailingBytes(after: .message, count: 1)),
        TunnelBadInput(name: "empty UnsupportedVersion", wire: "02 0000",
                 error: .truncated(field: .highestVersion, needed: 4, available: 3)),
        TunnelBadInput(name: "two-byte UnsupportedVersion", wire: "02 0002 0000",
                 error: .trailingBytes(after: .highestVersion, count: 1)),
        TunnelBadInput(name: "15-byte association id", wire: "05 000f 00112233445546778899aabbccddee",
                 error: .truncated(field: .associationID, needed: 19, available: 18)),
        TunnelBadInput(name: "EndpointDisconnect with a 17th byte", wire: "05 0011 00112233445546778899aabbccddeeff 00",
                 error: .trailingBytes(after: .associationID, count: 1)),
        TunnelBadInput(name: "empty dtls_message", wire: "04 0012 00112233445546778899aabbccddeeff 0000",
                 error: .invalidVectorLength(field: .dtlsMessage, length: 0, allowed: 1...65517)),
        TunnelBadInput(name: "dtls_message past the body", wire: "04 0014 00112233445546778899aabbccddeeff 0003 1616",
                 error: .truncated(field: .dtlsMessage, needed: 24, available: 23)),
        TunnelBadInput(name: "MediaKeys without profile", wire: "03 0011 00112233445546778899aabbccddeeff 00",
                 error: .truncated(field: .protectionProfile, needed: 21, available: 20)),
        TunnelBadInput(name: "MediaKeys with a 0-byte client key", wire: "03 0014 00112233445546778899aabbccddeeff 0009 00 00",
                 error: .invalidVectorLength(field: .clientWriteMasterKey, length: 0, allowed: 1...255)),
        // body = 16 + 2 + 1 + 2 + 2 + 2 = 25 = 0x19; server salt length byte would be at offset 28.
        TunnelBadInput(name: "MediaKeys without server salt",
                 wire: "03 0019 00112233445546778899aabbccddeeff 0009 00 01aa 01bb 01cc",
                 error: .truncated(field: .serverWriteMasterSalt, needed: 29, available: 28)),
        TunnelBadInput(name: "MediaKeys with a byte after the server salt",
                 wire: "03 001c 00112233445546778899aabbccddeeff 0009 00 01aa 01bb 01cc 01dd 00",
                 error: .trailingBytes(after: .serverWriteMasterSalt, count: 1)),
    ]

    @Test("rejects with the expected error", arguments: cases)
    func rejects(_ c: TunnelBadInput) {
        #expect(throws: c.error) { try TunnelMessage(parsing: hex(c.wire)) }
    }
}

extension TunnelSamples {
    /// Drains a framer; errors are collected in place of messages.
    static func drain(_ framer: inout TunnelFramer) -> [Result<TunnelMessage, TunnelError>] {
        var out: [Result<TunnelMessage, TunnelError>] = []
        while true {
            do {
                guard let m = try framer.next() else { return out }
                out.append(.success(m))
            } catch {
                out.append(.failure(error))
            }
        }
    }
}

@Suite("Tunnel: stream framer")
struct TunnelFramerTests {
    @Test("drip-fed one byte at a time, each message appears exactly when its last byte arrives")
    func dripFeed() throws {
        let expected = try TunnelSamples.messages()
        let ends = Set(TunnelSamples.vectors.map(\.bytes.count).reduce(into: [Int]()) { $0.append(($0.last ?? 0) + $1) })
        var framer = TunnelFramer()
        var got: [TunnelMessage] = []
        for (i, byte) in TunnelSamples.stream.enumerated() {
            framer.append([byte])
            let m = try framer.next()
            #expect((m != nil) == ends.contains(i + 1))
            if let m { got.append(m) }
            #expect(try framer.next() == nil)
        }
        #expect(got == expected)
        #expect(framer.bufferedByteCount == 0)
    }

    @Test("all messages in one chunk come out in order, then nil")
    func oneChunk() throws {
        var framer = TunnelFramer()
        framer.append(TunnelSamples.stream)
        let got = try TunnelSamples.drain(&framer).map { try $0.get() }
        #expect(got == (try TunnelSamples.messages()))
        #expect(try framer.next() == nil)
        #expect(framer.bufferedByteCount == 0)
    }

    @Test("a stream split at every position gives the same messages")
    func everySplit() throws {
        let stream = TunnelSamples.stream, expected = try TunnelSamples.messages()
        for cut in 0 ... stream.count {
            var framer = TunnelFramer()
            framer.append(stream[..<cut])
            var got = TunnelSamples.drain(&framer)
            framer.append(stream[cut...])
            got += TunnelSamples.drain(&framer)
            #expect(try got.map { try $0.get() } == expected, "cut at \(cut)")
            #expect(framer.bufferedByteCount == 0)
        }
    }

    @Test("an over-long frame is refused from its header, its body dropped, the next message kept")
    func oversize() throws {
        let big = try TunnelMessage.tunneledDtls(.init(associationID: TunnelSamples.association(TunnelSamples.assocA),
                                                        dtlsMessage: [UInt8](repeating: 0x16, count: 100))).serialized()
        let after = TunnelSamples.vectors[3].bytes
        var framer = TunnelFramer(maximumMessageLength: 64)
        framer.append(big[..<2])
        #expect(try framer.next() == nil)
        framer.append(big[2..<3])
        #expect(throws: TunnelError.messageTooLong(length: 121, maximum: 64)) { try framer.next() }
        #expect(framer.bufferedByteCount == 0)
        for chunk in stride(from: 3, to: big.count, by: 7) {
            framer.append(big[chunk ..< min(chunk + 7, big.count)])
            #expect(try framer.next() == nil)
            #expect(framer.bufferedByteCount == 0)
        }
        framer.append(after)
        #expect(try framer.next() == (try TunnelSamples.vectors[3].build()))
    }

    @Test("a message exactly at the bound is accepted")
    func atBound() throws {
        let message = try TunnelSamples.vectors[5].build()  // 82 bytes
        var framer = TunnelFramer(maximumMessageLength: message.serializedSize)
        framer.append(message.serialized())
        #expect(try framer.next() == message)
    }

    @Test("an unknown type is refused, its frame skipped, the stream goes on", arguments: [UInt8(0), 6, 0x80, 0xFF])
    func unknownType(type: UInt8) throws {
        var framer = TunnelFramer()
        framer.append([type, 0x00, 0x04, 1, 2] + [3, 4] + TunnelSamples.vectors[0].bytes)
        let results = TunnelSamples.drain(&framer)
        #expect(results.count == 2)
        #expect(throws: TunnelError.unknownMessageType(type)) { try results[0].get() }
        #expect(try results[1].get() == (try TunnelSamples.vectors[0].build()))
    }

    @Test("a malformed body is reported and only its frame consumed")
    func malformedBody() throws {
        var framer = TunnelFramer()
        framer.append(hex("01 0007 01 0004 0009 000A") + hex("02 0002 0000") + TunnelSamples.vectors[8].bytes)
        let results = TunnelSamples.drain(&framer)
        #expect(results.count == 3)
        #expect(throws: TunnelError.unsupportedVersion(1)) { try results[0].get() }
        #expect(throws: TunnelError.trailingBytes(after: .highestVersion, count: 1)) { try results[1].get() }
        #expect(try results[2].get() == (try TunnelSamples.vectors[8].build()))
    }

    @Test("a partial header or body is kept until it completes")
    func partial() throws {
        var framer = TunnelFramer()
        let bytes = TunnelSamples.vectors[6].bytes
        framer.append(bytes.dropLast())
        #expect(try framer.next() == nil)
        #expect(framer.bufferedByteCount == bytes.count - 1)
        framer.append(bytes.suffix(1))
        #expect(try framer.next() == (try TunnelSamples.vectors[6].build()))
    }
}

@Suite("Tunnel: robustness")
struct TunnelRobustnessTests {
    /// Property: a typed error (guaranteed by `throws(TunnelError)`), or a message that
    /// re-serializes to exactly the input.
    static func check(_ input: [UInt8]) -> Bool {
        do {
            return try TunnelMessage(parsing: input).serialized() == input
        } catch {
            _ = error as TunnelError
            return true
        }
    }

    @Test("every truncation of every sample gives a typed error or an exact re-parse", arguments: TunnelSamples.vectors)
    func truncationsAreSafe(_ v: TunnelWireVector) {
        for t in truncations(of: v.bytes) {
            #expect(Self.check(t), "\(t.hexString)")
        }
        // A strict prefix is never a complete message.
        for n in 0 ..< v.bytes.count {
            #expect(throws: TunnelError.self) { try TunnelMessage(parsing: Array(v.bytes.prefix(n))) }
        }
    }

    @Test("3000 seeded random mutations give typed errors or exact re-parses, also through the framer")
    func mutations() {
        var rng = SplitMix64(seed: 0x7E57_7E55_E1)
        let corpus = TunnelSamples.vectors.map(\.bytes)
        var parsed = 0
        for i in 0 ..< 3000 {
            let input = Mutator.mutate(corpus[i % corpus.count], using: &rng)
            #expect(Self.check(input), "mutation \(i): \(input.hexString)")
            if (try? TunnelMessage(parsing: input)) != nil { parsed += 1 }

            var framer = TunnelFramer(maximumMessageLength: 200)
            framer.append(input + corpus[0])
            var steps = 0
            for result in TunnelSamples.drain(&framer) {
                steps += 1
                if case let .success(m) = result { #expect(m.serializedSize <= 200) }
            }
            #expect(steps <= input.count + 1)
        }
        #expect(parsed > 0)  // some mutations stay valid (e.g. a changed key byte)
    }
}
