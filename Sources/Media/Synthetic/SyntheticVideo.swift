/// A deterministic test video: moving colour bars and a luma ramp, with the frame number drawn in
/// a built-in 5×7 pixel font; at each 5 s sync instant one frame is entirely white.
///
/// Frame `i` has presentation time `i / framesPerSecond` s. The sync frame for instant
/// t = 5k s (k ≥ 1) is the first frame with presentation time ≥ t, i.e. frame 5·k·fps; it has
/// Y = 235, U = V = 128 everywhere and no counter. `SyntheticVoice` starts its 1 kHz beep at the
/// same instants, so a muxed file can be checked for A/V sync.
public struct SyntheticVideo: Sendable {
    public let width: Int
    public let height: Int
    public let framesPerSecond: Int
    /// Index of the next frame `nextFrame()` returns.
    public private(set) var frameIndex = 0
    /// Whether the frame last returned was a white sync frame.
    public private(set) var isSyncFrame = false

    /// Luma of the white sync frame.
    public static let syncLuma: UInt8 = 235
    /// Seconds between sync instants.
    public static let syncIntervalSeconds = 5
    /// Digits in the drawn counter (zero-padded).
    public static let counterDigits = 6

    private let barOrder: [Int]
    private let barSpeed: Int
    private let rampSpeed: Int

    /// Colour bars (Y, U, V), BT.601 video range: white, yellow, cyan, green, magenta, red, blue, grey.
    private static let bars: [(UInt8, UInt8, UInt8)] = [
        (180, 128, 128), (162, 44, 142), (131, 156, 44), (112, 72, 58),
        (84, 184, 198), (65, 100, 212), (35, 212, 114), (100, 128, 128),
    ]

    /// - Parameters: width and height (even, 64...4096 × 36...2304), frame rate (1...120), seed
    ///   (bar order and speeds).
    public init(width: Int = 640, height: Int = 360, framesPerSecond: Int = 30, seed: UInt64 = 0) throws(MediaError) {
        guard (64 ... 4096).contains(width), (36 ... 2304).contains(height), width % 2 == 0, height % 2 == 0 else {
            throw .invalidArgument(name: "size", reason: "\(width)×\(height): need even sizes within 64...4096 × 36...2304")
        }
        guard (1 ... 120).contains(framesPerSecond) else {
            throw .invalidArgument(name: "framesPerSecond", reason: "\(framesPerSecond) outside 1...120")
        }
        self.width = width
        self.height = height
        self.framesPerSecond = framesPerSecond
        var rng = SeededGenerator(seed: seed)
        barOrder = Array(0 ..< Self.bars.count).shuffled(using: &rng)
        barSpeed = Int.random(in: 2 ... 6, using: &rng)
        rampSpeed = Int.random(in: 3 ... 9, using: &rng)
    }

    /// Whether frame `index` is the white frame of a sync instant (5 s, 10 s, …).
    public func isSyncFrameIndex(_ index: Int) -> Bool {
        let period = Self.syncIntervalSeconds * framesPerSecond
        return index > 0 && index % period == 0
    }

    /// Presentation time of frame `index` in 90 kHz RTP units (RFC 7741 §4.1 clock).
    public func rtpTimestamp(ofFrame index: Int) -> Int64 { Int64(index) * 90_000 / Int64(framesPerSecond) }

    /// The next frame; also updates `isSyncFrame`.
    public mutating func nextFrame() -> I420Frame {
        let frame = self.frame(at: frameIndex)
        isSyncFrame = isSyncFrameIndex(frameIndex)
        frameIndex += 1
        return frame
    }

    /// Frame `index` without advancing (pure function of the seed and index).
    public func frame(at index: Int) -> I420Frame {
        let cw = width / 2, ch = height / 2
        if isSyncFrameIndex(index) {
            return I420Frame(uncheckedWidth: width, height: height,
                             y: [UInt8](repeating: Self.syncLuma, count: width * height),
                             u: [UInt8](repeating: 128, count: cw * ch), v: [UInt8](repeating: 128, count: cw * ch))
        }
        var y = [UInt8](repeating: 0, count: width * height)
        var u = [UInt8](repeating: 128, count: cw * ch)
        var v = [UInt8](repeating: 128, count: cw * ch)
        let barWidth = max(2, width / Self.bars.count)
        let shift = index * barSpeed
        let rampTop = height * 2 / 3
        // Top two thirds: scrolling colour bars. Bottom third: a luma ramp sliding the other way.
        for row in 0 ..< height {
            for col in 0 ..< width {
                if row < rampTop {
                    let bar = barOrder[((col + shift) / barWidth) % Self.bars.count]
                    y[row * width + col] = Self.bars[bar].0
                } else {
                    let t = (col * 2 + row - index * rampSpeed) & 0x1FF
                    let tri = t < 256 ? t : 511 - t
                    y[row * width + col] = UInt8(16 + tri * 219 / 255)
                }
            }
        }
        for row in 0 ..< ch where row * 2 < rampTop {
            for col in 0 ..< cw {
                let bar = barOrder[((col * 2 + shift) / barWidth) % Self.bars.count]
                u[row * cw + col] = Self.bars[bar].1
                v[row * cw + col] = Self.bars[bar].2
            }
        }
        drawCounter(index, y: &y, u: &u, v: &v)
        return I420Frame(uncheckedWidth: width, height: height, y: y, u: u, v: v)
    }

    // MARK: Counter

    /// Size of one font pixel in image pixels.
    private var scale: Int { max(2, height / 60) }
    private var origin: (x: Int, y: Int) { (2 * scale, 2 * scale) }
    /// One digit cell: 5 glyph columns + 1 spacing column, 7 rows.
    private var cellWidth: Int { 6 * scale }

    private func drawCounter(_ index: Int, y: inout [UInt8], u: inout [UInt8], v: inout [UInt8]) {
        let s = scale, (ox, oy) = origin
        // Black box with a one-font-pixel margin, neutral chroma.
        let boxX = ox - s, boxY = oy - s
        let boxW = Self.counterDigits * cellWidth + s, boxH = 9 * s
        for row in boxY ..< min(height, boxY + boxH) {
            for col in boxX ..< min(width, boxX + boxW) { y[row * width + col] = 16 }
        }
        let cw = width / 2
        for row in boxY / 2 ..< min(height / 2, (boxY + boxH + 1) / 2) {
            for col in boxX / 2 ..< min(cw, (boxX + boxW + 1) / 2) { u[row * cw + col] = 128; v[row * cw + col] = 128 }
        }
        var value = index
        for position in stride(from: Self.counterDigits - 1, through: 0, by: -1) {
            let glyph = DigitFont.glyphs[value % 10]
            value /= 10
            for gr in 0 ..< 7 {
                for gc in 0 ..< 5 where glyph[gr] & (0x10 >> gc) != 0 {
                    let x0 = ox + position * cellWidth + gc * s, y0 = oy + gr * s
                    for row in y0 ..< min(height, y0 + s) {
                        for col in x0 ..< min(width, x0 + s) { y[row * width + col] = 235 }
                    }
                }
            }
        }
    }

    /// Reads the frame counter back from a (possibly decoded, lossy) frame of this geometry.
    ///
    /// Samples the centre of every font pixel, thresholds at Y = 126 and picks, for each digit,
    /// the glyph at the smallest Hamming distance; `nil` if the size differs, the frame is a sync
    /// frame, or any digit is more than 4 of 35 pixels from every glyph.
    public func readCounter(_ frame: I420Frame) -> Int? {
        guard frame.width == width, frame.height == height else { return nil }
        let s = scale, (ox, oy) = origin
        var value = 0
        for position in 0 ..< Self.counterDigits {
            var rows = [UInt8](repeating: 0, count: 7)
            for gr in 0 ..< 7 {
                for gc in 0 ..< 5 {
                    let x = ox + position * cellWidth + gc * s + s / 2, yy = oy + gr * s + s / 2
                    guard x < width, yy < height else { return nil }
                    if frame.y[yy * width + x] > 126 { rows[gr] |= 0x10 >> gc }
                }
            }
            guard let digit = DigitFont.closest(rows, maxDistance: 4) else { return nil }
            value = value * 10 + digit
        }
        return value
    }

    /// Whether `frame` looks like a white sync frame: ≥ 99 % of luma samples ≥ 200 and mean
    /// chroma within 8 of neutral. Holds after lossy coding; no content frame passes (the counter
    /// box is black).
    public static func isSyncFrame(_ frame: I420Frame) -> Bool {
        let bright = frame.y.reduce(0) { $0 + ($1 >= 200 ? 1 : 0) }
        guard bright * 100 >= frame.y.count * 99 else { return false }
        let du = frame.u.reduce(0) { $0 + abs(Int($1) - 128) }
        let dv = frame.v.reduce(0) { $0 + abs(Int($1) - 128) }
        return du + dv <= 8 * frame.u.count
    }
}

/// A 5×7 digit font drawn for this package: each glyph is 7 rows, bit 4 = leftmost column.
enum DigitFont {
    static let glyphs: [[UInt8]] = [
        [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110],  // 0
        [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],  // 1
        [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111],  // 2
        [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110],  // 3
        [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010],  // 4
        [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110],  // 5
        [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110],  // 6
        [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000],  // 7
        [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110],  // 8
        [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100],  // 9
    ]

    /// The digit whose glyph differs from `rows` in the fewest pixels, if within `maxDistance`.
    static func closest(_ rows: [UInt8], maxDistance: Int) -> Int? {
        var best: (digit: Int, distance: Int)?
        for (digit, glyph) in glyphs.enumerated() {
            let d = zip(glyph, rows).reduce(0) { $0 + ($1.0 ^ $1.1).nonzeroBitCount }
            if best.map({ d < $0.distance }) ?? true { best = (digit, d) }
        }
        guard let best, best.distance <= maxDistance else { return nil }
        return best.digit
    }
}
