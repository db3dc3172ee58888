// MARK: - JPEG decode shim
//
// libjpeg reports fatal errors through error_exit, which by default calls exit(). Swift cannot
// longjmp, so this tiny C wrapper owns the setjmp and turns every libjpeg error into a return code
// plus libjpeg's message text.
#ifndef EP_JPEG_SHIM_H
#define EP_JPEG_SHIM_H

#include <stddef.h>

/// Decodes a complete JPEG held in memory to 8-bit interleaved RGB (grayscale is replicated).
/// On success returns 0 and sets *pixels (malloc'd, width*height*3 bytes; free with ep_jpeg_free).
/// On failure returns -1, leaves *pixels NULL and writes libjpeg's message into `error`.
/// A truncated stream ("Premature end of JPEG file", a libjpeg warning) is treated as an error.
/// An image wider or taller than `maxSide`, or with more than `maxPixels` pixels, is refused after
/// reading the header, before anything is allocated for its pixels.
int ep_jpeg_decode_rgb(const unsigned char *data, size_t size,
                       unsigned char **pixels, int *width, int *height,
                       size_t maxSide, size_t maxPixels,
                       char *error, size_t errorSize);

void ep_jpeg_free(unsigned char *pixels);

#endif
