// CLibSRTP: libsrtp2, used only as an independent oracle in tests and as the benchmark's peer.
#ifndef PERCREC_CLIBSRTP_SHIM_H
#define PERCREC_CLIBSRTP_SHIM_H
#include <srtp2/srtp.h>
#endif
