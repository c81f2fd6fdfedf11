import SRTP

/// One EKT parameter set (RFC 8870 §4.3): the EKTKey, its cipher and the SRTP master salt that
/// goes with every key wrapped under it, as delivered by one EKTKey message.
public final class EKTParameterSet: @unchecked Sendable {
    public let spi: UInt16
    public let cipher: EKTCipher
    public let masterSalt: SecretBytes
    public let ttl: UInt32
    public let receivedAt: ContinuousClock.Instant
    let wrap: AESKeyWrap

    public init(message: EKTKeyMessage, cipher: EKTCipher, receivedAt: ContinuousClock.Instant = .now) throws(EKTError) {
        guard message.ektKeyValue.count == cipher.keyLength else {
            throw .invalidKEKLength(expected: [cipher.keyLength], got: message.ektKeyValue.count)
        }
        spi = message.spi
        self.cipher = cipher
        masterSalt = message.srtpMasterSalt
        ttl = message.ttl
        self.receivedAt = receivedAt
        wrap = try cipher.makeKeyWrap(ektKey: message.ektKeyValue)
    }

    /// Whether `ekt_ttl` seconds have passed since the key arrived.
    public func isExpired(at now: ContinuousClock.Instant) -> Bool {
        now - receivedAt > .seconds(Int64(ttl))
    }

    /// The salt for a transform needing `length` bytes: its first `length` bytes (RFC 8870 §4.3.2 step 4).
    /// Whether `field` is a Full EKT field made under this EKTKey for `ssrc`: it unwraps (the
    /// AES key wrap integrity check passes) and carries that SSRC. The master key is zeroed at
    /// once; a recorder uses this to refuse forged fields without keeping any media key.
    public func verifies(_ field: FullEKTField, ssrc: UInt32) -> Bool {
        guard field.spi == spi, let plaintext = try? field.decrypt(with: wrap) else { return false }
        plaintext.masterKey.wipe()
        return plaintext.ssrc == ssrc
    }

    func salt(length: Int) -> SecretBytes { masterSalt.slice(0..<Swift.min(length, masterSalt.count)) }
}

/// The E2E receive state of one remote sender (one SSRC).
final class EKTSource {
    struct InnerKey {
        let spi: UInt16
        let epoch: UInt16
        let ciphertext: [UInt8]   // the Full field that announced it, to recognise repeats cheaply
        let context: SRTPCryptoContext
    }
    let stream: SRTPStream
    /// Newest first; old keys are kept for late and reordered packets after a rekey.
    var keys: [InnerKey]
    var highestEpoch: [UInt16: UInt16]

    init(stream: SRTPStream, first: InnerKey) {
        self.stream = stream
        keys = [first]
        highestEpoch = [first.spi: first.epoch]
    }
}

/// What happened to a packet the EKT receiver opened.
public struct EKTOpenResult: Sendable, Equatable {
    public var ssrc: UInt32
    /// The SPI and epoch of the key that opened the packet.
    public var spi: UInt16
    public var epoch: UInt16
    /// A Full EKT field brought a key not seen before for this SSRC.
    public var newKey: Bool
    /// This packet created the SSRC's receive state.
    public var newSource: Bool
    /// A Full field that was ignored while the packet itself was accepted (stale epoch, SSRC mismatch).
    public var ignoredField: PERCError?
}

/// Receiver processing of RFC 8870 §4.3.2 for the inner (E2E) layer: SPI lookup, unwrap, SSRC
/// check, epoch check, per-SSRC contexts, and old keys kept after a rekey.
///
/// A key from a Full field is committed only after the packet it came with authenticates, under
/// that key or under a key this SSRC already had. A new SSRC's state is created only when its
/// packet authenticates under the new key. Not thread-safe.
public final class EKTReceiver {
    public let layerProfile: SRTPProfile
    public let replayWindowSize: Int
    public let maxSources: Int
    public let keysPerSource: Int
    /// Refuse keys past their `ekt_ttl` (live reception). Archive export turns this off.
    public var enforceTTL: Bool
    private var parameterSets: [UInt16: EKTParameterSet] = [:]
    private var sources: [UInt32: EKTSource] = [:]

    public init(layerProfile: SRTPProfile = .aeadAes128Gcm, replayWindowSize: Int = SRTPSession.defaultReplayWindow,
                maxSources: Int = 4096, keysPerSource: Int = 4, enforceTTL: Bool = true) {
        self.layerProfile = layerProfile
        self.replayWindowSize = replayWindowSize
        self.maxSources = maxSources
        self.keysPerSource = Swift.max(1, keysPerSource)
        self.enforceTTL = enforceTTL
    }

    /// Stores an EKT parameter set. Every SPI is kept (RFC 8870 §4.3): tags under old SPIs stay decodable.
    public func add(_ set: EKTParameterSet) { parameterSets[set.spi] = set }

    public func add(_ message: EKTKeyMessage, cipher: EKTCipher) throws(EKTError) {
        add(try EKTParameterSet(message: message, cipher: cipher))
    }

    public var knownSPIs: [UInt16] { parameterSets.keys.sorted() }
    public var sourceCount: Int { sources.count }
    /// The inner stream state for `ssrc`, if it has authenticated a packet.
    public func stream(for ssrc: UInt32) -> SRTPStream? { sources[ssrc]?.stream }
    /// (SPI, epoch) of the keys held for `ssrc`, newest first.
    public func keys(for ssrc: UInt32) -> [(spi: UInt16, epoch: UInt16)] { sources[ssrc]?.keys.map { ($0.spi, $0.epoch) } ?? [] }

    /// Opens the inner packet filling `buffer` — an RFC 7714 SRTP packet under the sender's E2E
    /// key — using the EKT field that came with it. Returns the RTP length and what happened.
    public func open(_ buffer: UnsafeMutableRawBufferPointer, field: EKTField,
                     now: ContinuousClock.Instant = .now) throws(PERCError) -> (length: Int, result: EKTOpenResult) {
        guard buffer.count >= 12 else { throw .srtp(.malformed(.truncated(field: .fixedHeader, needed: 12, available: buffer.count))) }
        let ssrc = UInt32(buffer[8]) << 24 | UInt32(buffer[9]) << 16 | UInt32(buffer[10]) << 8 | UInt32(buffer[11])
        let existing = sources[ssrc]
        var candidate: EKTSource.InnerKey?
        var candidateROC: UInt32 = 0
        var ignored: PERCError?

        if case let .full(f) = field {
            guard let set = parameterSets[f.spi] else { throw .unknownSPI(f.spi) }
            if enforceTTL, set.isExpired(at: now) { throw .ektKeyExpired(spi: f.spi) }
            let repeated = existing?.keys.contains { $0.spi == f.spi && $0.epoch == f.epoch && $0.ciphertext == f.ciphertext } ?? false
            if !repeated {
                if let seen = existing?.highestEpoch[f.spi], f.epoch <= seen {
                    ignored = .staleEpoch(ssrc: ssrc, spi: f.spi, epoch: f.epoch, highest: seen)
                } else {
                    let plaintext: EKTPlaintext
                    do { plaintext = try f.decrypt(with: set.wrap) } catch { throw .ekt(error) }
                    if plaintext.ssrc != ssrc {
                        ignored = .ektSSRCMismatch(fieldSSRC: plaintext.ssrc, packetSSRC: ssrc)
                    } else {
                        guard plaintext.masterKey.count == layerProfile.masterKeyLength else {
                            throw .ektKeyLength(expected: layerProfile.masterKeyLength, got: plaintext.masterKey.count)
                        }
                        do {
                            let context = try SRTPCryptoContext(profile: layerProfile, masterKey: plaintext.masterKey,
                                                                masterSalt: set.salt(length: layerProfile.masterSaltLength), direction: .inbound)
                            candidate = EKTSource.InnerKey(spi: f.spi, epoch: f.epoch, ciphertext: f.ciphertext, context: context)
                        } catch { throw .srtp(error) }
                        candidateROC = plaintext.roc
                    }
                }
            }
        }

        guard existing != nil || candidate != nil else {
            if let reason = ignored { throw reason }
            throw .noKeyForSource(ssrc)
        }
        if existing == nil, sources.count >= maxSources { throw .tooManySources(limit: maxSources) }
        let stream = existing?.stream ?? SRTPStream(ssrc: ssrc, initialROC: candidateROC, replayWindowSize: replayWindowSize)

        // Try the announced key first, then the kept ones, newest first (no per-packet array).
        let offset = candidate == nil ? 0 : 1
        let keptKeys = existing?.keys ?? []
        for k in 0..<(offset + keptKeys.count) {
            let key: EKTSource.InnerKey
            if k < offset, let c = candidate { key = c } else { key = keptKeys[k - offset] }
            let length: Int
            do {
                length = try key.context.unprotectRTP(buffer, stream: stream)
            } catch {
                if case .authenticationFailed = error { continue }   // try the next key
                throw .srtp(error)                                   // replay, malformed: no key will do
            }
            var result = EKTOpenResult(ssrc: ssrc, spi: key.spi, epoch: key.epoch, newKey: false, newSource: false, ignoredField: ignored)
            // Authenticated: now commit.
            if let c = candidate {
                result.newKey = true
                if let e = existing {
                    e.keys.insert(c, at: 0)
                    if e.keys.count > keysPerSource { e.keys.removeLast(e.keys.count - keysPerSource) }
                    e.highestEpoch[c.spi] = Swift.max(e.highestEpoch[c.spi] ?? 0, c.epoch)
                } else if key.spi == c.spi && key.epoch == c.epoch {
                    sources[ssrc] = EKTSource(stream: stream, first: c)
                    result.newSource = true
                }
            }
            return (length, result)
        }
        throw .srtp(.authenticationFailed(ssrc: ssrc))
    }

    /// Zeroes every key this receiver holds and forgets all sources (for example at conference end).
    public func wipe() {
        for set in parameterSets.values { set.masterSalt.wipe() }
        parameterSets.removeAll()
        sources.removeAll()   // releasing the contexts frees and cleanses the EVP key schedules
    }
}
