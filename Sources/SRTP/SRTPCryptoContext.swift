import RTPWire

/// The session keys derived from one SRTP master key and salt, with one reused cipher context per
/// key and direction (RFC 3711 §4.3, RFC 7714).
///
/// This type holds no per-SSRC state; `SRTPStream` does. That lets one stream be checked
/// against several keys (old and new after a rekey), and lets the ROC outlive a key.
public final class SRTPCryptoContext {
    public let profile: SRTPProfile
    public let direction: SRTPDirection

    private enum Transform {
        case gcm(AESGCMCipher)
        case counterHMAC(AESCounterCipher, HMACSHA1)
    }
    private let rtp: Transform
    private let rtcp: Transform
    // Salts copied into raw storage once so per-packet IV building needs no closure calls.
    private let saltStorage: UnsafeMutableRawPointer

    /// Derives the session keys for `profile` from a master key and salt.
    public convenience init(profile: SRTPProfile, masterKey: SecretBytes, masterSalt: SecretBytes, direction: SRTPDirection) throws(SRTPError) {
        guard masterKey.count == profile.masterKeyLength else {
            throw .invalidKeyLength(what: "\(profile) master key", expected: profile.masterKeyLength, got: masterKey.count)
        }
        guard masterSalt.count == profile.masterSaltLength else {
            throw .invalidKeyLength(what: "\(profile) master salt", expected: profile.masterSaltLength, got: masterSalt.count)
        }
        func derive(_ label: SRTPKeyDerivation.Label, _ n: Int) throws(SRTPError) -> SecretBytes {
            try SRTPKeyDerivation.derive(masterKey: masterKey, masterSalt: masterSalt, label: label, length: n)
        }
        let k = profile.masterKeyLength, s = profile.sessionSaltLength, a = profile.authKeyLength
        try self.init(profile: profile, direction: direction,
                      rtp: SessionKeys(encryption: try derive(.srtpEncryption, k), salt: try derive(.srtpSalt, s),
                                       authentication: a > 0 ? try derive(.srtpAuthentication, a) : nil),
                      rtcp: SessionKeys(encryption: try derive(.srtcpEncryption, k), salt: try derive(.srtcpSalt, s),
                                        authentication: a > 0 ? try derive(.srtcpAuthentication, a) : nil))
    }

    /// Session keys for one of SRTP or SRTCP (RFC 3711 §4.3.1 labels 0–2 or 3–5).
    struct SessionKeys {
        var encryption: SecretBytes
        var salt: SecretBytes
        var authentication: SecretBytes?
    }

    /// Uses session keys directly (RFC 7714's examples give session keys, not master keys).
    init(profile: SRTPProfile, direction: SRTPDirection, rtp rtpKeys: SessionKeys, rtcp rtcpKeys: SessionKeys) throws(SRTPError) {
        self.profile = profile
        self.direction = direction
        let sealing = direction == .outbound
        func transform(_ keys: SessionKeys) throws(SRTPError) -> Transform {
            if profile.isAEAD {
                return .gcm(try keys.encryption.withUnsafeBytes { (k) throws(SRTPError) in try AESGCMCipher(key: k, sealing: sealing) })
            }
            guard let auth = keys.authentication else { throw .invalidKeyLength(what: "HMAC-SHA1 key", expected: 20, got: 0) }
            return .counterHMAC(try keys.encryption.withUnsafeBytes { (k) throws(SRTPError) in try AESCounterCipher(key: k) },
                                try auth.withUnsafeBytes { (k) throws(SRTPError) in try HMACSHA1(key: k) })
        }
        rtp = try transform(rtpKeys)
        rtcp = try transform(rtcpKeys)
        saltStorage = .allocate(byteCount: 32, alignment: 16)
        saltStorage.initializeMemory(as: UInt8.self, repeating: 0, count: 32)
        rtpKeys.salt.withUnsafeBytes { saltStorage.copyMemory(from: $0.baseAddress!, byteCount: Swift.min($0.count, 14)) }
        rtcpKeys.salt.withUnsafeBytes { (saltStorage + 16).copyMemory(from: $0.baseAddress!, byteCount: Swift.min($0.count, 14)) }
    }

    deinit {
        // Session salts are secret too (RFC 3711 §9.1 treats them as key material).
        for i in 0..<32 { saltStorage.storeBytes(of: 0, toByteOffset: i, as: UInt8.self) }
        saltStorage.deallocate()
    }

    /// Bytes appended to an SRTP packet.
    public var srtpOverhead: Int { profile.srtpTagLength }
    /// Bytes appended to an SRTCP packet: tag plus the E‖index word.
    public var srtcpOverhead: Int { profile.srtcpTagLength + 4 }

    // MARK: IVs

    /// RTP IV: GCM (RFC 7714 §8.1) salt ⊕ (0000‖SSRC‖ROC‖SEQ); CM (RFC 3711 §4.1.1)
    /// salt·2^16 ⊕ SSRC·2^64 ⊕ index·2^16.
    @inline(__always)
    private func rtpIV(_ iv: UnsafeMutableRawPointer, ssrc: UInt32, index: UInt64) {
        iv.copyMemory(from: saltStorage, byteCount: 16)
        let roc = UInt32(truncatingIfNeeded: index >> 16), seq = UInt16(truncatingIfNeeded: index)
        if profile.isAEAD {
            xorBigEndian32(iv, at: 2, ssrc); xorBigEndian32(iv, at: 6, roc); xorBigEndian16(iv, at: 10, seq)
        } else {
            xorBigEndian32(iv, at: 4, ssrc); xorBigEndian16(iv, at: 8, UInt16(truncatingIfNeeded: roc >> 16))
            xorBigEndian16(iv, at: 10, UInt16(truncatingIfNeeded: roc)); xorBigEndian16(iv, at: 12, seq)
        }
    }

    /// SRTCP IV: GCM (RFC 7714 §9.1) salt ⊕ (0000‖SSRC‖0000‖0‖index); CM as RTP with the SRTCP index.
    @inline(__always)
    private func rtcpIV(_ iv: UnsafeMutableRawPointer, ssrc: UInt32, index: UInt32) {
        iv.copyMemory(from: saltStorage + 16, byteCount: 16)
        if profile.isAEAD {
            xorBigEndian32(iv, at: 2, ssrc); xorBigEndian32(iv, at: 8, index)
        } else {
            xorBigEndian32(iv, at: 4, ssrc); xorBigEndian32(iv, at: 10, index)
        }
    }

    // MARK: RTP payload transforms (the header is passed as AAD so callers can supply a synthetic one)

    /// Encrypts `body` in place and writes the tag to `tag` (AEAD: 16 bytes; HMAC: the profile's tag length).
    func sealPayload(aad: UnsafeRawBufferPointer, body: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawPointer,
                     ssrc: UInt32, index: UInt64) -> Bool {
        var iv: IVBlock = (0, 0)
        return withUnsafeMutableBytes(of: &iv) { ivp -> Bool in
            rtpIV(ivp.baseAddress!, ssrc: ssrc, index: index)
            switch rtp {
            case let .gcm(c):
                return c.seal(iv: ivp.baseAddress!, aad1: aad, text: body, tag: tag)
            case let .counterHMAC(ctr, mac):
                guard ctr.apply(iv: ivp.baseAddress!, text: body) else { return false }
                var roc = UInt32(truncatingIfNeeded: index >> 16).bigEndian
                var digest: (UInt64, UInt64, UInt64) = (0, 0, 0)
                return withUnsafeBytes(of: &roc) { rocp in
                    withUnsafeMutableBytes(of: &digest) { d in
                        guard mac.mac(aad, UnsafeRawBufferPointer(body), rocp, into: d.baseAddress!) else { return false }
                        tag.copyMemory(from: d.baseAddress!, byteCount: profile.srtpTagLength)
                        return true
                    }
                }
            }
        }
    }

    /// Verifies the tag and, only then, decrypts `body` in place. On failure `body` is unchanged.
    func openPayload(aad: UnsafeRawBufferPointer, body: UnsafeMutableRawBufferPointer, tag: UnsafeRawPointer,
                     ssrc: UInt32, index: UInt64) -> Bool {
        var iv: IVBlock = (0, 0)
        return withUnsafeMutableBytes(of: &iv) { ivp -> Bool in
            rtpIV(ivp.baseAddress!, ssrc: ssrc, index: index)
            switch rtp {
            case let .gcm(c):
                return c.open(iv: ivp.baseAddress!, aad1: aad, text: body, tag: tag)
            case let .counterHMAC(ctr, mac):
                var roc = UInt32(truncatingIfNeeded: index >> 16).bigEndian
                var digest: (UInt64, UInt64, UInt64) = (0, 0, 0)
                let ok = withUnsafeBytes(of: &roc) { rocp in
                    withUnsafeMutableBytes(of: &digest) { d in
                        mac.mac(aad, UnsafeRawBufferPointer(body), rocp, into: d.baseAddress!)
                            && HMACSHA1.equal(d.baseAddress!, tag, count: profile.srtpTagLength)
                    }
                }
                return ok && ctr.apply(iv: ivp.baseAddress!, text: body)
            }
        }
    }

    // MARK: SRTP packets

    /// Protects the RTP packet in the first `length` bytes of `buffer`, which must have room for
    /// `srtpOverhead` more. Returns the SRTP length. Updates `stream`'s ROC.
    public func protectRTP(_ buffer: UnsafeMutableRawBufferPointer, length: Int, stream: SRTPStream) throws(SRTPError) -> Int {
        precondition(direction == .outbound, "protectRTP on an inbound context")
        let layout: RTPHeaderLayout
        do { layout = try RTPHeaderLayout(buffer.view(0..<length)) } catch { throw .malformed(error) }
        let tagLength = profile.srtpTagLength
        guard buffer.count >= length + tagLength else {
            throw .packetTooShort(field: .srtpTag, needed: length + tagLength, available: buffer.count)
        }
        guard stream.packetsProtected < profile.maximumLifetime else { throw .keyLifetimeExhausted(ssrc: layout.ssrc) }
        let e = stream.estimate(sequence: layout.sequenceNumber)
        guard sealPayload(aad: buffer.view(0..<layout.headerLength), body: buffer.mutableView(layout.headerLength..<length),
                          tag: buffer.baseAddress! + length, ssrc: layout.ssrc, index: e.index)
        else { throw .cryptoLibrary(openSSLErrorText("SRTP seal")) }
        stream.packetsProtected += 1
        stream.commit(sequence: layout.sequenceNumber, estimate: e)
        return length + tagLength
    }

    /// Unprotects the SRTP packet that fills `buffer`, returning the RTP length.
    /// Checks replay, then authenticates, then decrypts; `stream` changes only on success.
    public func unprotectRTP(_ buffer: UnsafeMutableRawBufferPointer, stream: SRTPStream) throws(SRTPError) -> Int {
        precondition(direction == .inbound, "unprotectRTP on an outbound context")
        let layout: RTPHeaderLayout
        do { layout = try RTPHeaderLayout(UnsafeRawBufferPointer(buffer)) } catch { throw .malformed(error) }
        let tagLength = profile.srtpTagLength
        let end = buffer.count - tagLength
        guard end >= layout.headerLength else {
            throw .packetTooShort(field: .srtpTag, needed: layout.headerLength + tagLength, available: buffer.count)
        }
        let e = stream.estimate(sequence: layout.sequenceNumber)
        if e.beforeStart { throw .tooOld(ssrc: layout.ssrc, index: e.index) }
        switch stream.checkReplay(e.index) {
        case .fresh: break
        case .alreadySeen: throw .replayed(ssrc: layout.ssrc, index: e.index)
        case .tooOld: throw .tooOld(ssrc: layout.ssrc, index: e.index)
        }
        guard openPayload(aad: buffer.view(0..<layout.headerLength), body: buffer.mutableView(layout.headerLength..<end),
                          tag: buffer.baseAddress! + end, ssrc: layout.ssrc, index: e.index)
        else { throw .authenticationFailed(ssrc: layout.ssrc) }
        stream.commit(sequence: layout.sequenceNumber, estimate: e)
        return end
    }

    // MARK: SRTCP packets (RFC 3711 §3.4, RFC 7714 §9)

    /// Protects the RTCP compound packet in the first `length` bytes of `buffer` (room for
    /// `srtcpOverhead` more), encrypting it unless `encrypt` is false (E=0). Returns the SRTCP length.
    public func protectRTCP(_ buffer: UnsafeMutableRawBufferPointer, length: Int, stream: SRTPStream, encrypt: Bool = true) throws(SRTPError) -> Int {
        precondition(direction == .outbound, "protectRTCP on an outbound context")
        guard length >= 8 else { throw .malformed(.truncated(field: .rtcpHeader, needed: 8, available: length)) }
        guard buffer[0] >> 6 == 2 else { throw .malformed(.unsupportedVersion(buffer[0] >> 6)) }
        guard buffer.count >= length + srtcpOverhead else {
            throw .packetTooShort(field: .srtcpIndex, needed: length + srtcpOverhead, available: buffer.count)
        }
        let ssrc = loadBigEndian32(buffer.baseAddress!, at: 4)
        let index = stream.takeSRTCPIndex()
        let word = (encrypt ? 0x8000_0000 : 0) | index
        let base = buffer.baseAddress!
        var iv: IVBlock = (0, 0)
        let ok: Bool = withUnsafeMutableBytes(of: &iv) { ivp in
            rtcpIV(ivp.baseAddress!, ssrc: ssrc, index: index)
            switch rtcp {
            case let .gcm(c):
                // Wire: header(8) ‖ ciphertext ‖ tag(16) ‖ E‖index   (E=0: compound ‖ tag ‖ E‖index)
                storeBigEndian32(base, at: length + 16, word)
                let wordView = buffer.view(length + 16..<length + 20)
                if encrypt {
                    return c.seal(iv: ivp.baseAddress!, aad1: buffer.view(0..<8), aad2: wordView,
                                  text: buffer.mutableView(8..<length), tag: base + length)
                }
                return c.seal(iv: ivp.baseAddress!, aad1: buffer.view(0..<length), aad2: wordView,
                              text: buffer.mutableView(length..<length), tag: base + length)
            case let .counterHMAC(ctr, mac):
                // Wire: header(8) ‖ ciphertext ‖ E‖index ‖ tag(10); the tag covers everything before it.
                if encrypt, !ctr.apply(iv: ivp.baseAddress!, text: buffer.mutableView(8..<length)) { return false }
                storeBigEndian32(base, at: length, word)
                var digest: (UInt64, UInt64, UInt64) = (0, 0, 0)
                return withUnsafeMutableBytes(of: &digest) { d in
                    guard mac.mac(buffer.view(0..<length + 4), .init(start: nil, count: 0), .init(start: nil, count: 0),
                                  into: d.baseAddress!) else { return false }
                    (base + length + 4).copyMemory(from: d.baseAddress!, byteCount: 10)
                    return true
                }
            }
        }
        guard ok else { throw .cryptoLibrary(openSSLErrorText("SRTCP seal")) }
        return length + srtcpOverhead
    }

    /// Unprotects the SRTCP packet that fills `buffer`, returning the RTCP compound length.
    public func unprotectRTCP(_ buffer: UnsafeMutableRawBufferPointer, stream: SRTPStream) throws(SRTPError) -> Int {
        precondition(direction == .inbound, "unprotectRTCP on an outbound context")
        let count = buffer.count
        guard count >= 8 + srtcpOverhead else {
            throw .packetTooShort(field: .srtcpIndex, needed: 8 + srtcpOverhead, available: count)
        }
        guard buffer[0] >> 6 == 2 else { throw .malformed(.unsupportedVersion(buffer[0] >> 6)) }
        let base = buffer.baseAddress!
        let ssrc = loadBigEndian32(base, at: 4)
        let tagLength = profile.srtcpTagLength
        let end = count - srtcpOverhead
        let wordOffset = profile.isAEAD ? count - 4 : count - 4 - tagLength
        let word = loadBigEndian32(base, at: wordOffset)
        let encrypted = word & 0x8000_0000 != 0
        let index = word & 0x7FFF_FFFF
        switch stream.checkRTCPReplay(index) {
        case .fresh: break
        case .alreadySeen: throw .replayed(ssrc: ssrc, index: UInt64(index))
        case .tooOld: throw .tooOld(ssrc: ssrc, index: UInt64(index))
        }
        var iv: IVBlock = (0, 0)
        let ok: Bool = withUnsafeMutableBytes(of: &iv) { ivp in
            rtcpIV(ivp.baseAddress!, ssrc: ssrc, index: index)
            switch rtcp {
            case let .gcm(c):
                let wordView = buffer.view(count - 4..<count)
                if encrypted {
                    return c.open(iv: ivp.baseAddress!, aad1: buffer.view(0..<8), aad2: wordView,
                                  text: buffer.mutableView(8..<end), tag: base + end)
                }
                return c.open(iv: ivp.baseAddress!, aad1: buffer.view(0..<end), aad2: wordView,
                              text: buffer.mutableView(end..<end), tag: base + end)
            case let .counterHMAC(ctr, mac):
                var digest: (UInt64, UInt64, UInt64) = (0, 0, 0)
                let authentic = withUnsafeMutableBytes(of: &digest) { d in
                    mac.mac(buffer.view(0..<count - tagLength), .init(start: nil, count: 0), .init(start: nil, count: 0), into: d.baseAddress!)
                        && HMACSHA1.equal(d.baseAddress!, base + count - tagLength, count: tagLength)
                }
                guard authentic else { return false }
                return !encrypted || ctr.apply(iv: ivp.baseAddress!, text: buffer.mutableView(8..<end))
            }
        }
        guard ok else { throw .authenticationFailed(ssrc: ssrc) }
        stream.commitRTCP(index: index)
        return end
    }
}
