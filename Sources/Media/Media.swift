// Media: codecs, synthetic sources and RTP payload formats.
//
// Codecs/     libopus and libvpx (VP8) behind one `final class` each; C stays in COpus/CVPX.
// Synthetic/  deterministic test participants (speech-like voice with 5 s sync beeps, video with
//             a frame counter and 5 s white sync frames) and the RFC 6464 level meter.
// Payload/    RFC 7587 (Opus) and RFC 7741 (VP8) payload formats: descriptors, packetizers, and a
//             frame assembler that never returns a partial frame.
