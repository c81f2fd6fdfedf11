import SRTP

/// A PERC sending endpoint (RFC 8871 §4.5): double SRTP under its own E2E master key, with an
/// EKT field on every packet carrying that key wrapped under the conference's EKTKey.
///
/// Full EKT fields go out in the first `fullRepeat` packets after any key change and then every
/// `fullEvery` packets (RFC 8870 §4.6); Short fields otherwise. On a new EKTKey it makes a new
/// master key (RFC 8871 §4.5.2) and announces it under the new SPI with epoch 0.
public final class PERCSender {
    public let ssrc: UInt32
    public let profile: DoubleSRTPProfile
    public let fullRepeat: Int
    public let fullEvery: Int
    private let double: DoubleSRTPSender
    private var parameters: EKTParameterSet
    private var masterKey: SecretBytes
    public private(set) var epoch: UInt16 = 0
    private var fullRemaining: Int
    private var sinceFull = 0
    private var cachedField: (roc: UInt32, field: FullEKTField)?

    /// - Parameters:
    ///   - outerKey/outerSalt: this endpoint's HBH key towards the Media Distributor.
    ///   - ektKey: the conference EKTKey from the Key Distributor.
    public init(ssrc: UInt32, profile: DoubleSRTPProfile = .doubleAeadAes128Gcm, outerKey: SecretBytes, outerSalt: SecretBytes,
                ektKey: EKTParameterSet, fullRepeat: Int = 3, fullEvery: Int = 50) throws(PERCError) {
        self.ssrc = ssrc
        self.profile = profile
        self.fullRepeat = fullRepeat
        self.fullEvery = Swift.max(1, fullEvery)
        parameters = ektKey
        let layer = profile.layerProfile
        masterKey = SecretBytes(randomCount: layer.masterKeyLength)
        do {
            double = try DoubleSRTPSender(profile: profile, innerKey: masterKey, innerSalt: ektKey.salt(length: layer.masterSaltLength),
                                          outerKey: outerKey, outerSalt: outerSalt)
        } catch { throw .srtp(error) }
        fullRemaining = fullRepeat
    }

    /// The SPI of the EKTKey in use.
    public var spi: UInt16 { parameters.spi }
    /// The current E2E master key (exposed for tests that must show it never leaks).
    public var currentMasterKey: SecretBytes { masterKey }

    /// A new EKTKey arrived: make a new master key and announce it (RFC 8871 §4.5.2).
    public func rekey(_ ektKey: EKTParameterSet) throws(PERCError) {
        parameters = ektKey
        epoch = 0
        try switchMasterKey()
    }

    /// Change the E2E master key under the same EKTKey (epoch + 1, RFC 8870 §4.1).
    public func changeMasterKey() throws(PERCError) {
        epoch &+= 1
        try switchMasterKey()
    }

    private func switchMasterKey() throws(PERCError) {
        let layer = profile.layerProfile
        let old = masterKey
        masterKey = SecretBytes(randomCount: layer.masterKeyLength)
        do { try double.replaceInnerKey(masterKey, salt: parameters.salt(length: layer.masterSaltLength)) } catch { throw .srtp(error) }
        old.wipe()
        cachedField = nil
        fullRemaining = fullRepeat
    }

    /// Double-protects the RTP packet `packet` (which must carry this sender's SSRC) and appends the EKT field.
    public func protect(_ packet: inout [UInt8]) throws(PERCError) {
        guard packet.count >= 12 else { throw .srtp(.malformed(.truncated(field: .fixedHeader, needed: 12, available: packet.count))) }
        let seq = UInt16(packet[2]) << 8 | UInt16(packet[3])
        let roc = double.innerRolloverCounter(ssrc: ssrc, sequence: seq)
        let full = fullRemaining > 0 || sinceFull + 1 >= fullEvery
        var field: EKTField = .short
        if full {
            if let c = cachedField, c.roc == roc {
                field = .full(c.field)
            } else {
                do {
                    let plaintext = try EKTPlaintext(masterKey: masterKey, ssrc: ssrc, roc: roc)
                    let f = try EKTField.makeFull(plaintext: plaintext, spi: parameters.spi, epoch: epoch, wrap: parameters.wrap)
                    cachedField = (roc, f)
                    field = .full(f)
                } catch { throw .ekt(error) }
            }
        }
        do { try double.protect(&packet) } catch { throw .srtp(error) }
        field.write(to: &packet)
        if full { sinceFull = 0; fullRemaining = Swift.max(0, fullRemaining - 1) } else { sinceFull += 1 }
    }

    /// Protects an RTCP compound packet for the hop (SRTCP carries no EKT field, RFC 8870 §4).
    public func protectRTCP(_ packet: inout [UInt8]) throws(PERCError) {
        do { try double.outer.protectRTCP(&packet) } catch { throw .srtp(error) }
    }

    /// Zeroes the E2E master key.
    public func wipe() { masterKey.wipe() }
}

/// What a PERC receiver learned from one packet.
public struct PERCReceiveInfo: Sendable, Equatable {
    public var outer: OuterLayerInfo
    public var ekt: EKTOpenResult
    /// Whether the packet carried a Full EKT field.
    public var hadFullField: Bool
}

/// A PERC receiving endpoint: strips the EKT field, opens the HBH layer, restores the header
/// from the OHB, and opens the E2E layer with keys learned from EKT (RFC 8723 §5.3, RFC 8870 §4.3.2).
///
/// Every refused packet is counted by reason in `drops`.
public final class PERCReceiver {
    public let outer: DoubleSRTPReceiver
    public let ekt: EKTReceiver
    public private(set) var drops = DropCounters()
    public private(set) var accepted = 0

    public init(profile: DoubleSRTPProfile = .doubleAeadAes128Gcm, outerKey: SecretBytes, outerSalt: SecretBytes,
                replayWindowSize: Int = SRTPSession.defaultReplayWindow) throws(PERCError) {
        do {
            outer = try DoubleSRTPReceiver(profile: profile, outerKey: outerKey, outerSalt: outerSalt, replayWindowSize: replayWindowSize)
        } catch { throw .srtp(error) }
        ekt = EKTReceiver(layerProfile: profile.layerProfile, replayWindowSize: replayWindowSize)
    }

    /// Receives one datagram: `packet` becomes the plaintext RTP packet (original header, no
    /// header extension). On failure `packet` is unchanged, the reason is counted and thrown.
    public func receive(_ packet: inout [UInt8], now: ContinuousClock.Instant = .now) throws(PERCError) -> PERCReceiveInfo {
        do {
            let info = try receiveUncounted(&packet, now: now)
            accepted += 1
            return info
        } catch {
            drops.count(error)
            throw error
        }
    }

    private func receiveUncounted(_ packet: inout [UInt8], now: ContinuousClock.Instant) throws(PERCError) -> PERCReceiveInfo {
        let field: EKTField, fieldLength: Int
        do { (field, fieldLength) = try EKTField.parse(trailerOf: packet) } catch { throw .ekt(error) }
        var work = Array(packet[0..<(packet.count - fieldLength)])
        let outerInfo: OuterLayerInfo
        do { outerInfo = try outer.openOuter(&work) } catch { throw .srtp(error) }
        let opened: Result<(length: Int, result: EKTOpenResult), PERCError> = work.withUnsafeMutableBytes { raw in
            do throws(PERCError) { return .success(try ekt.open(raw, field: field, now: now)) } catch { return .failure(error) }
        }
        let (length, result) = try opened.get()
        work.removeLast(work.count - length)
        packet = work
        return PERCReceiveInfo(outer: outerInfo, ekt: result, hadFullField: { if case .full = field { return true } else { return false } }())
    }

    /// Receives an SRTCP packet from the hop (HBH only, RFC 8723 §6).
    public func receiveRTCP(_ packet: inout [UInt8]) throws(PERCError) {
        do { try outer.outer.unprotectRTCP(&packet); accepted += 1 } catch {
            let e = PERCError.srtp(error)
            drops.count(e)
            throw e
        }
    }

    /// Forgets and zeroes every E2E key (conference end).
    public func wipe() { ekt.wipe() }
}

extension DoubleSRTPRelay {
    /// Forwards a PERC datagram: the trailing EKT field passes through untouched (RFC 8871 §4.1).
    public func forwardPERC(_ packet: inout [UInt8], rewrite: HeaderRewrite) throws(PERCError) {
        let fieldLength: Int
        do { fieldLength = try EKTField.parse(trailerOf: packet).length } catch { throw .ekt(error) }
        do { try forward(&packet, trailerLength: fieldLength, rewrite: rewrite) } catch { throw .srtp(error) }
    }
}
