//! Splitting wide port accesses into byte accesses.
//!
//! The PC chipset turns a 16- or 32-bit I/O cycle aimed at an 8-bit ISA device into byte cycles
//! at consecutive ports (`port`, `port + 1`, ...). Devices with 8-bit registers use these helpers
//! so that `inw`/`outw` behave as on the real bus.

/// Read `size` bytes (1..=4; other sizes are clamped) from consecutive ports, lowest port in the
/// lowest byte.
pub fn read_bytewise(port: u16, size: u8, mut read_byte: impl FnMut(u16) -> u8) -> u32 {
    let mut value = 0u32;
    for i in 0..size.clamp(1, 4) {
        value |= u32::from(read_byte(port.wrapping_add(u16::from(i)))) << (8 * u32::from(i));
    }
    value
}

/// Write the low `size` bytes (1..=4; other sizes are clamped) of `value` to consecutive ports,
/// lowest byte first.
pub fn write_bytewise(port: u16, size: u8, value: u32, mut write_byte: impl FnMut(u16, u8)) {
    for i in 0..size.clamp(1, 4) {
        let byte = (value >> (8 * u32::from(i))) as u8;
        write_byte(port.wrapping_add(u16::from(i)), byte);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_in_port_order() {
        let v = read_bytewise(0x70, 2, |p| if p == 0x70 { 0x12 } else { 0x34 });
        assert_eq!(v, 0x3412);
        let mut seen = Vec::new();
        write_bytewise(0xfffe, 4, 0x4433_2211, |p, b| seen.push((p, b)));
        assert_eq!(
            seen,
            vec![(0xfffe, 0x11), (0xffff, 0x22), (0, 0x33), (1, 0x44)]
        );
        assert_eq!(read_bytewise(0, 0, |_| 0xab), 0xab);
    }
}
