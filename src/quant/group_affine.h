// Group-affine block formats: HQQ (quant/hqq.h) and AFQ (quant/afq.h) share one block shape.
//
// A row of n weights is n / g consecutive blocks, one per group of g consecutive elements:
//   [header][payload: g * bits / 8 bytes]
// The payload is a little-endian bit stream: q of element j sits at bits [j*bits, (j+1)*bits) of
// the payload, i.e. in byte j*bits/8 at shift (j*bits) % 8, spilling into the next byte for 3 and
// 6 bits. This is MLX's packing (AFQ must be byte-identical to it); HQQ uses the same stream so
// both families share one set of block decoders and SIMD kernels. q is unsigned, 0..2^bits - 1.
//
// Headers (little-endian):
//   AFQ: bf16 scale, bf16 bias (4 bytes)      w = q * scale + bias
//   HQQ: f32 scale,  f32 zero  (8 bytes)      w = (q - zero) * scale
//
// The kernels (kernels/generic/decode_group_affine.cc, kernels/x86/group_affine_x86.inc) read a
// block per sub-block of 32 elements as w = s * v + m with v an int8: v = q for bits <= 6 and
// v = q - 128 for 8 bits (m absorbing the shift), paired with q8_1 activations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "insitu/quant_type.h"
#include "quant/type_traits.h"

namespace insitu {

enum class AffineHeader : uint8_t {
  kAfq,  // bf16 scale, bf16 bias
  kHqq,  // f32 scale, f32 zero
};

// Geometry of one group-affine type.
struct GroupAffineFormat {
  QuantType type;
  int bits;   // 2, 3, 4, 6 or 8
  int group;  // elements per block: 32, 64 or 128
  AffineHeader header;

  size_t header_bytes() const { return header == AffineHeader::kAfq ? 4 : 8; }
  size_t payload_bytes() const { return static_cast<size_t>(group * bits / 8); }
  size_t block_bytes() const { return header_bytes() + payload_bytes(); }
};

// Every HQQ and AFQ type, in id order.
std::span<const GroupAffineFormat> group_affine_formats();

// The format of `type`, or null when it is not an HQQ or AFQ type.
const GroupAffineFormat* group_affine_format(QuantType type);

// The type-table row of a group-affine type: geometry from its format, paired with q8_1
// activations, never requiring an imatrix.
TypeTraits group_affine_traits(QuantType type, const char* name, DequantizeRowFn dequantize,
                               QuantizeFn quantize);

// Packs n values (each < 2^bits) into the little-endian bit stream described above;
// n * bits must be a multiple of 8. Writes n * bits / 8 bytes.
void pack_bit_stream(const uint8_t* q, int64_t n, int bits, uint8_t* out);

// The inverse: reads n * bits / 8 bytes, writes n values.
void unpack_bit_stream(const uint8_t* in, int64_t n, int bits, uint8_t* q);

}  // namespace insitu
