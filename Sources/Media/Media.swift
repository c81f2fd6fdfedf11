// Media: codecs, synthetic sources, RTP payload formats and file containers.
//
// Codecs/     libopus and libvpx (VP8) behind one `final class` each; C stays in COpus/CVPX.
// Synthetic/  deterministic test participants (speech-like voice with 5 s sync beeps, video with
//             a frame counter and 5 s white sync frames) and the RFC 6464 level meter.
// Payload/    RFC 7587 (Opus) and RFC 7741 (VP8) payload formats: descriptors, packetizers, a
//             frame assembler that never returns a partial frame, and Opus gap concealment.
// Container/  Ogg Opus (RFC 3533, RFC 7845) and WebM (EBML, RFC 8794 / Matroska RFC 9559)
//             writers, with parsers for their own checks. No cipher is ever seen here.
