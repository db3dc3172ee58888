#include "jpeg_shim.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

// libjpeg's error manager extended with our jump buffer (the struct's first member is the
// public manager, so libjpeg's pointer to it is also a pointer to this).
struct ep_error_mgr {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
};

static void ep_error_exit(j_common_ptr cinfo) {
    struct ep_error_mgr *err = (struct ep_error_mgr *)cinfo->err;
    longjmp(err->jump, 1);
}

// Warnings (msg_level -1) are ignored like PIL does, except truncation: PIL refuses truncated
// files, and libjpeg would silently pad them with grey.
static void ep_emit_message(j_common_ptr cinfo, int msg_level) {
    if (msg_level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) ep_error_exit(cinfo);
}

int ep_jpeg_decode_rgb(const unsigned char *data, size_t size,
                       unsigned char **pixels, int *width, int *height,
                       size_t maxSide, size_t maxPixels,
                       char *error, size_t errorSize) {
    struct jpeg_decompress_struct cinfo;
    struct ep_error_mgr jerr;
    unsigned char *volatile out = NULL;
    *pixels = NULL; *width = 0; *height = 0;
    if (errorSize > 0) error[0] = 0;

    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = ep_error_exit;
    jerr.pub.emit_message = ep_emit_message;
    if (setjmp(jerr.jump)) {
        char buffer[JMSG_LENGTH_MAX];
        (*cinfo.err->format_message)((j_common_ptr)&cinfo, buffer);
        if (errorSize > 0) snprintf(error, errorSize, "%s", buffer);
        jpeg_destroy_decompress(&cinfo);
        free(out);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    // Refuse huge images before libjpeg allocates for them (its coefficient buffers included).
    if (cinfo.image_width > maxSide || cinfo.image_height > maxSide ||
        (size_t)cinfo.image_width * cinfo.image_height > maxPixels) {
        if (errorSize > 0)
            snprintf(error, errorSize, "JPEG dimensions %ux%u exceed the limits (each side at most %zu: Limits.maxImageSide; at most %zu pixels: Limits.maxImagePixels)",
                     (unsigned)cinfo.image_width, (unsigned)cinfo.image_height, maxSide, maxPixels);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    cinfo.mem->max_memory_to_use = 8 * maxPixels;  // working memory beyond the output, as a backstop
    cinfo.out_color_space = JCS_RGB;  // YCbCr, RGB and grayscale convert; CMYK/YCCK fail clearly
    jpeg_start_decompress(&cinfo);

    size_t stride = (size_t)cinfo.output_width * 3;
    out = malloc(stride * cinfo.output_height);
    if (!out) ERREXIT1(&cinfo, JERR_OUT_OF_MEMORY, 0);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    *width = (int)cinfo.output_width;
    *height = (int)cinfo.output_height;
    jpeg_destroy_decompress(&cinfo);
    *pixels = out;
    return 0;
}

void ep_jpeg_free(unsigned char *pixels) { free(pixels); }
