//! Parquet's RLE / bit-packing hybrid encoding, used for definition levels and dictionary
//! indices (the format's `Encodings.md`): runs of eight or more equal values become one
//! RLE run, everything else is bit-packed eight values at a time.

/// Bits needed to store every value up to `max`.
pub(crate) fn bit_width(max: u32) -> u8 {
    (32 - max.leading_zeros()) as u8
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `values` encoded with `width` bits each. Values must fit in `width` bits.
pub(crate) fn encode<T: Copy + Into<u32> + PartialEq>(values: &[T], width: u8, out: &mut Vec<u8>) {
    let mut literals_start = 0;
    let mut i = 0;
    while i < values.len() {
        let v = values[i];
        let mut j = i + 1;
        while j < values.len() && values[j] == v {
            j += 1;
        }
        // A bit-packed run holds whole groups of eight, so a repeated run first tops the
        // pending literals up to a multiple of eight and is worth a run of its own only if
        // eight or more values are left after that.
        let pending = i - literals_start;
        let pad = (8 - pending % 8) % 8;
        if j - i >= pad + 8 {
            bit_pack(&values[literals_start..i + pad], width, out);
            rle_run(v.into(), (j - i - pad) as u64, width, out);
            literals_start = j;
        }
        i = j;
    }
    bit_pack(&values[literals_start..], width, out);
}

fn rle_run(value: u32, len: u64, width: u8, out: &mut Vec<u8>) {
    put_varint(out, len << 1);
    let bytes = usize::from(width).div_ceil(8);
    out.extend_from_slice(&value.to_le_bytes()[..bytes]);
}

/// Bit-packs `values`, padding the last group of eight with zeros: only the last run of a
/// page may be padded, which holds since a packed run is only ever followed by an RLE run
/// after a whole number of groups.
fn bit_pack<T: Copy + Into<u32>>(values: &[T], width: u8, out: &mut Vec<u8>) {
    if values.is_empty() {
        return;
    }
    let groups = values.len().div_ceil(8);
    put_varint(out, ((groups as u64) << 1) | 1);
    if width == 0 {
        return;
    }
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    let width = u32::from(width);
    for k in 0..groups * 8 {
        let v = values.get(k).map_or(0, |v| (*v).into());
        acc |= u64::from(v) << bits;
        bits += width;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    debug_assert_eq!(bits, 0, "eight values of any width fill whole bytes");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoder written from the format description, to check the encoder's runs.
    fn decode(mut data: &[u8], width: u8, n: usize) -> Vec<u32> {
        let mut out = Vec::new();
        let bytes = usize::from(width).div_ceil(8);
        while out.len() < n {
            let mut header = 0u64;
            let mut shift = 0;
            loop {
                let b = data[0];
                data = &data[1..];
                header |= u64::from(b & 0x7f) << shift;
                shift += 7;
                if b < 0x80 {
                    break;
                }
            }
            if header & 1 == 0 {
                let mut le = [0u8; 4];
                le[..bytes].copy_from_slice(&data[..bytes]);
                data = &data[bytes..];
                out.extend(std::iter::repeat_n(u32::from_le_bytes(le), (header >> 1) as usize));
            } else {
                let count = (header >> 1) as usize * 8;
                let mut acc = 0u64;
                let mut bits = 0;
                for _ in 0..count {
                    while bits < u32::from(width) {
                        acc |= u64::from(data[0]) << bits;
                        data = &data[1..];
                        bits += 8;
                    }
                    out.push((acc & ((1u64 << width) - 1)) as u32);
                    acc >>= width;
                    bits -= u32::from(width);
                }
            }
        }
        out.truncate(n);
        out
    }

    fn round_trip(values: &[u32]) {
        let width = bit_width(values.iter().copied().max().unwrap_or(0));
        let mut buf = Vec::new();
        encode(values, width, &mut buf);
        if width > 0 {
            assert_eq!(decode(&buf, width, values.len()), values, "width {width}");
        }
    }

    #[test]
    fn runs_literals_and_their_mix_decode_to_the_input() {
        round_trip(&[]);
        round_trip(&[5; 1000]);
        round_trip(&(0..1000).collect::<Vec<_>>());
        let mut mixed = vec![1, 2, 3];
        mixed.extend([7; 20]);
        mixed.extend([1, 2]);
        mixed.extend([0; 9]);
        mixed.extend((0..13).map(|i| i * 37 % 11));
        mixed.extend([3; 8]);
        mixed.push(4);
        round_trip(&mixed);
        round_trip(&[u32::MAX, 0, u32::MAX, u32::MAX]);
    }

    #[test]
    fn long_runs_cost_a_few_bytes() {
        let mut buf = Vec::new();
        encode(&[3u32; 8192], 2, &mut buf);
        assert_eq!(buf, vec![0x80, 0x80, 0x01, 3]);
        assert_eq!(bit_width(0), 0);
        assert_eq!(bit_width(1), 1);
        assert_eq!(bit_width(255), 8);
    }
}
