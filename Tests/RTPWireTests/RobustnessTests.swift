import Testing
import TestSupport
import RTPWire

/// Every parser on truncated and mutated packets: a typed error or a value that round-trips, never a crash.
@Suite("Robustness")
struct RobustnessTests {
    static func corpus() throws -> [[UInt8]] {
        let oneByte = try RTPHeaderExtension.oneByte([
            RTPHeaderExtensionElement(id: 1, data: [0x8A]),
            RTPHeaderExtensionElement(id: 5, data: Array(0 ..< 16)),
        ])
        let twoByte = try RTPHeaderExtension.twoByte([
            RTPHeaderExtensionElement(id: 1, data: []),
            RTPHeaderExtensionElement(id: 200, data: Array(0 ..< 20)),
        ], appBits: 3)
        let rtpWithEverything = try RTPPacket(
            marker: true, payloadType: 111, sequenceNumber: 0xFFFE, timestamp: 0x1234_5678, ssrc: 0xDEAD_BEEF,
            csrcs: [1, 2, 3], headerExtension: oneByte, payload: Array(repeating: 0x42, count: 20), paddingLength: 5)
        let rtpTwoByte = try RTPPacket(
            payloadType: 96, sequenceNumber: 1, timestamp: 2, ssrc: 3, csrcs: Array(1 ... 15), headerExtension: twoByte,
            payload: [1, 2, 3, 4])
        let handPadded = hex("b1ef1234 deadbeef 01020304 aabbccdd bede0003 10aa0000 22bbccdd 308a0000 0102 03 00000004")
        return [
            Vectors.rfc7714RTP,
            rtpWithEverything.serialized(),
            rtpTwoByte.serialized(),
            handPadded,
            Vectors.rfc7714RTCPConsistent,
            RTCPTests.handWritten,
            try RTCPTests.everyKind().serialized(),
        ]
    }

    /// Runs every parser over `bytes` and checks the outcomes agree and round-trip.
    static func exercise(_ bytes: [UInt8]) {
        _ = DatagramKind.classify(bytes)

        let layout = attempt { () throws(RTPParseError) in try RTPHeaderLayout(bytes) }
        let rtp = attempt { () throws(RTPParseError) in try RTPPacket(parsing: bytes) }
        let shifted = ([0xEE] + bytes).dropFirst()
        let rtpFromSlice = attempt { () throws(RTPParseError) in try RTPPacket(parsing: shifted) }
        #expect(rtpFromSlice == rtp)

        switch (layout, rtp) {
        case let (.failure(layoutError), _):
            #expect(rtp == .failure(layoutError), "RTPHeaderLayout and RTPPacket disagree")
        case let (.success(header), .success(packet)):
            #expect(header.headerLength == packet.headerSize)
            #expect(header.csrcCount == packet.csrcs.count)
            #expect(header.hasPadding == packet.hasPadding)
            #expect(header.sequenceNumber == packet.sequenceNumber)
            #expect(packet.serialized() == bytes)
            #expect(attempt { () throws(RTPParseError) in try RTPPacket(parsing: packet.serialized()) } == .success(packet))
            if let ext = packet.headerExtension {
                checkElements(ext)
            }
        case (.success, .failure):
            break  // Header fine, padding wrong: only RTPPacket looks at padding.
        }

        let rtcp = attempt { () throws(RTPParseError) in try RTCPCompoundPacket(parsing: bytes) }
        if case let .success(compound) = rtcp {
            let again = compound.serialized()
            #expect(again == bytes)
            #expect(attempt { () throws(RTPParseError) in try RTCPCompoundPacket(parsing: again) } == .success(compound))
        }
    }

    /// Parsed elements rebuild into a block that reads back the same elements.
    static func checkElements(_ ext: RTPHeaderExtension) {
        guard case let .success(elements) = attempt({ () throws(RTPParseError) in try ext.elements }) else { return }
        for element in elements {
            #expect(ext.element(id: element.id) != nil)
        }
        let rebuilt = attempt { () throws(RTPParseError) -> RTPHeaderExtension in
            switch ext.form {
            case .oneByte: try RTPHeaderExtension.oneByte(elements)
            case let .twoByte(appBits): try RTPHeaderExtension.twoByte(elements, appBits: appBits)
            case nil: throw .invalidValue(field: .extensionHeader, reason: "unreachable: elements parsed")
            }
        }
        guard case let .success(block) = rebuilt else {
            Issue.record("could not rebuild parsed elements: \(rebuilt)")
            return
        }
        #expect(attempt { () throws(RTPParseError) in try block.elements } == .success(elements))
        #expect(block.profile == ext.profile)
    }

    @Test("accepts every corpus packet and round-trips it")
    func corpusIsValid() throws {
        for bytes in try Self.corpus() {
            let rtp = attempt { () throws(RTPParseError) in try RTPPacket(parsing: bytes) }
            let rtcp = attempt { () throws(RTPParseError) in try RTCPCompoundPacket(parsing: bytes) }
            switch DatagramKind.classify(bytes) {
            case .rtp: #expect(try RTPPacket(parsing: bytes).serialized() == bytes)
            case .rtcp: #expect(try RTCPCompoundPacket(parsing: bytes).serialized() == bytes)
            default: Issue.record("corpus entry is neither RTP nor RTCP: \(rtp) \(rtcp)")
            }
        }
    }

    @Test("survives every truncation of every corpus packet")
    func truncations() throws {
        for bytes in try Self.corpus() {
            for length in 0 ... bytes.count {
                Self.exercise(Array(bytes.prefix(length)))
            }
        }
    }

    @Test("survives 3000 seeded random mutations")
    func mutations() throws {
        let corpus = try Self.corpus()
        var rng = SplitMix64(seed: 0x5045_5243_5245_4301)
        var parsedRTP = 0
        var parsedRTCP = 0
        for _ in 0 ..< 3000 {
            var bytes = corpus[Int(rng.next() % UInt64(corpus.count))]
            for _ in 0 ..< 1 + Int(rng.next() % 4) {
                let position = bytes.isEmpty ? 0 : Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 4 {
                case 0 where !bytes.isEmpty: bytes[position] ^= UInt8(1) << (rng.next() % 8)
                case 1 where !bytes.isEmpty: bytes[position] = UInt8(truncatingIfNeeded: rng.next())
                case 2: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: position)
                default: if !bytes.isEmpty { bytes.remove(at: position) }
                }
            }
            Self.exercise(bytes)
            if (try? RTPPacket(parsing: bytes)) != nil { parsedRTP += 1 }
            if (try? RTCPCompoundPacket(parsing: bytes)) != nil { parsedRTCP += 1 }
        }
        // Make sure the mutations exercise the success paths too, not only the error paths.
        #expect(parsedRTP > 100)
        #expect(parsedRTCP > 20)
    }
}
