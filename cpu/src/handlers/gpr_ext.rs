//! Later general-purpose extensions: ADCX/ADOX (ADX), MOVBE, CRC32 (SSE4.2) and
//! RDRAND/RDSEED. Each is #UD on a model whose CPUID lacks its feature.
//!
//! RDRAND/RDSEED draw from a deterministic generator seeded from the CPU state (time-stamp
//! counter, RIP, destination), so a `--deterministic` run repeats byte for byte; they always
//! succeed (CF = 1).

use super::bmi::require;
use crate::cpuid::{ecx, leaf7};
use crate::fault::Exec;
use crate::flags::size_mask;
use crate::operand::op_size;
use crate::state::rflags::{ARITH, CF, OF};
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, Mnemonic as M};

/// ADCX (carry through CF) and ADOX (carry through OF); no other flag changes.
fn adx(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require(cpu.model.leaf7[0] & leaf7::EBX_ADX != 0)?;
    let size = op_size(i, 0);
    let carry_flag = if i.mnemonic() == M::Adcx { CF } else { OF };
    let f = cpu.flags();
    let a = u128::from(cpu.read_op(bus, i, 0, size)?);
    let b = u128::from(cpu.read_op(bus, i, 1, size)? & size_mask(size));
    let sum = a + b + u128::from(f & carry_flag != 0);
    cpu.write_op(bus, i, 0, size, sum as u64 & size_mask(size))?;
    let out = sum >> (u32::from(size) * 8) != 0;
    cpu.set_flags((f & !carry_flag) | if out { carry_flag } else { 0 });
    Ok(())
}

/// MOVBE: a load or store with the bytes reversed (16-bit forms keep the register's
/// upper bits).
fn movbe(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require(cpu.model.features_ecx & ecx::MOVBE != 0)?;
    let size = op_size(i, 0);
    let v = cpu.read_op(bus, i, 1, size)?;
    let swapped = v.swap_bytes() >> (64 - u32::from(size) * 8);
    cpu.write_op(bus, i, 0, size, swapped)
}

/// One CRC-32C (Castagnoli, reflected polynomial 82F63B78h) step over the `size` low bytes
/// of `data`, without the initial and final inversions (as the instruction does).
pub(crate) fn crc32c(mut crc: u32, data: u64, size: u8) -> u32 {
    for k in 0..u32::from(size) {
        crc ^= (data >> (8 * k)) as u32 & 0xff;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82f6_3b78 & (crc & 1).wrapping_neg());
        }
    }
    crc
}

/// CRC32 r32/r64, r/m: the destination's low 32 bits accumulate; the result is
/// zero-extended.
fn crc32(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require(cpu.model.features_ecx & ecx::SSE42 != 0)?;
    let dsize = op_size(i, 0);
    let ssize = op_size(i, 1);
    let data = cpu.read_op(bus, i, 1, ssize)?;
    let acc = cpu.read_op(bus, i, 0, dsize)? as u32;
    cpu.write_op(bus, i, 0, dsize, u64::from(crc32c(acc, data, ssize)))
}

/// SplitMix64's finaliser: a bijective mix with good avalanche.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The next random value: a function of the time-stamp counter (which advances with every
/// retired instruction), RIP and the destination register's number.
pub(crate) fn random(cpu: &Cpu, reg: u64, seed: bool) -> u64 {
    let salt = if seed { 0x5eed } else { 0x4a4d };
    mix(cpu.tsc().wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ mix(cpu.s.rip ^ reg << 56 ^ salt << 40))
}

/// RDRAND/RDSEED r16/r32/r64: CF = 1 (a value is always ready), OF SF ZF AF PF cleared.
fn rdrand(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let seed = i.mnemonic() == M::Rdseed;
    require(if seed {
        cpu.model.leaf7[0] & leaf7::EBX_RDSEED != 0
    } else {
        cpu.model.features_ecx & ecx::RDRAND != 0
    })?;
    let size = op_size(i, 0);
    let reg = i.op0_register() as u64;
    let v = random(cpu, reg, seed);
    cpu.write_op(bus, i, 0, size, v & size_mask(size))?;
    let f = cpu.flags();
    cpu.set_flags((f & !ARITH) | CF);
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    let m = Meta::plain(Isa::X64);
    use Code as C;
    t.add(
        &[
            C::Adcx_r32_rm32,
            C::Adcx_r64_rm64,
            C::Adox_r32_rm32,
            C::Adox_r64_rm64,
        ],
        adx,
        m,
    );
    t.add(
        &[
            C::Movbe_r16_m16,
            C::Movbe_r32_m32,
            C::Movbe_r64_m64,
            C::Movbe_m16_r16,
            C::Movbe_m32_r32,
            C::Movbe_m64_r64,
        ],
        movbe,
        m,
    );
    t.add(
        &[
            C::Crc32_r32_rm8,
            C::Crc32_r64_rm8,
            C::Crc32_r32_rm16,
            C::Crc32_r32_rm32,
            C::Crc32_r64_rm64,
        ],
        crc32,
        m,
    );
    t.add(
        &[
            C::Rdrand_r16,
            C::Rdrand_r32,
            C::Rdrand_r64,
            C::Rdseed_r16,
            C::Rdseed_r32,
            C::Rdseed_r64,
        ],
        rdrand,
        m,
    );
}
