import Archive
import Authority
import EKT
import SRTP

/// The conference's epoch keys, opened with the archive authority's private key (DESIGN §2):
/// one EKT parameter set per SPI, held in memory only for the export and wiped by `wipe()`.
///
/// Authorization happens here, before any output exists: a key that opens none of the
/// conference's sealed epochs is refused as a whole.
public final class EpochKeyRing {
    /// Opened parameter sets by SPI.
    private(set) var sets: [UInt16: EKTParameterSet] = [:]
    /// Epochs sealed to another authority key, or that failed to open: (SPI, reason).
    public private(set) var unopened: [(spi: UInt16, reason: String)] = []
    public var openedSPIs: [UInt16] { sets.keys.sorted() }

    public init(conference: String, epochs: [ArchivedEpoch], authority: AuthorityPrivateKey) throws(ExportError) {
        guard !epochs.isEmpty else {
            throw .nothingToExport("conference \(conference) has no epoch keys in the archive (nothing was keyed while recording)")
        }
        let mine = authority.publicKey.keyID
        for e in epochs {
            guard let cipher = EKTCipher.allCases.first(where: { "\($0)" == e.cipher }) else {
                unopened.append((e.spi, "unknown EKT cipher \(e.cipher)"))
                continue
            }
            guard e.authorityKeyID == mine else {
                unopened.append((e.spi, "sealed to authority key \(e.authorityKeyID)"))
                continue
            }
            let sealed = SealedEpochKey(conference: conference, spi: e.spi, cipher: cipher, authorityKeyID: e.authorityKeyID,
                                        encapsulatedKey: e.encapsulatedKey, ciphertext: e.sealedKey)
            do {
                let message = try sealed.open(with: authority)
                defer { message.ektKeyValue.wipe() }   // the key wrap keeps its own schedule
                if sets[e.spi] != nil {
                    // Two epochs with one SPI (a restarted Key Distributor): the first one wins.
                    unopened.append((e.spi, "a second epoch with SPI \(e.spi) (key id \(e.keyID)) is not used"))
                    message.srtpMasterSalt.wipe()
                    continue
                }
                sets[e.spi] = try EKTParameterSet(message: message, cipher: cipher)
            } catch {
                unopened.append((e.spi, "\(error)"))
            }
        }
        guard !sets.isEmpty else {
            let sealedTo = Set(epochs.map(\.authorityKeyID)).sorted().joined(separator: ", ")
            let detail = unopened.first.map { "SPI \($0.spi): \($0.reason)" } ?? ""
            throw .unauthorized("the authority key \(mine) opens none of the \(epochs.count) epoch keys of \(conference) "
                                + "(they are sealed to \(sealedTo); \(detail))")
        }
    }

    /// A fresh end-to-end receiver holding every opened parameter set, TTL not enforced (an
    /// archive is read long after the keys' lifetime).
    func makeReceiver() -> EKTReceiver {
        let receiver = EKTReceiver(enforceTTL: false)
        for set in sets.values { receiver.add(set) }
        return receiver
    }

    /// Zeroes the salts; the key-wrap schedules are cleansed when the sets are released.
    public func wipe() {
        for set in sets.values { set.masterSalt.wipe() }
        sets.removeAll()
    }

    deinit { wipe() }
}
