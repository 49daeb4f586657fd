//! `demo`: shows that the machine is alive and the CPU computes correctly.
//!
//! 1. Real mode: COM1 init, print the banner and a real-mode line (DS = F000 while printing).
//! 2. Build a GDT in RAM, set CR0.PE, far jump to flat 32-bit code, load the data segments.
//! 3. Sieve of Eratosthenes for the numbers below 1000 in RAM at 0x10000 (`rep stosb` to
//!    clear, `imul` for i*i, byte marks); count, sum and largest prime, printed in decimal
//!    (`div` by 10) and the sum also in hex (`rol`/`and`).
//! 4. Bitwise CRC-32 (reflected, polynomial 0xEDB88320) of the ASCII string "123456789" in
//!    the ROM: the standard check value 0xCBF43926 (`shr`/`jnc`/`xor`/`loop`).
//! 5. Print "bye", power off through port 0x8900.
//!
//! The exact output is `nestor_roms::DEMO_EXPECTED_SERIAL`.

use iced_x86::code_asm::*;

use super::common::{self, linear, SerialRoutines};
use super::{GenResult, Program};

/// Sieve bytes: 0 = prime candidate, 1 = composite.
const SIEVE: u32 = 0x1_0000;
/// Numbers below this are sieved.
const LIMIT: u32 = 1000;
/// Results in RAM: count, sum, largest prime, CRC (dwords).
const RESULTS: u32 = 0x0900;

/// Helper routines of the 32-bit part.
#[derive(Clone, Copy)]
struct Routines {
    serial: SerialRoutines,
    /// Prints EAX in decimal. Clobbers EAX, EDX.
    print_dec: CodeLabel,
    /// Prints EAX as 8 hex digits. Clobbers EAX, EDX.
    print_hex: CodeLabel,
}

pub fn build() -> GenResult<Program> {
    let mut data = common::DataArea::default();
    let code16 = real_mode_part(&mut data)?;

    let mut a = CodeAssembler::new(32)?;
    let r = Routines {
        serial: SerialRoutines::new(&mut a),
        print_dec: a.create_label(),
        print_hex: a.create_label(),
    };
    common::emit_pm_entry(&mut a)?;
    let msg = data.add_str("protected mode: flat 4 GiB segments loaded\r\n");
    common::emit_print32(&mut a, r.serial, msg)?;
    emit_sieve(&mut a)?;
    emit_sieve_report(&mut a, r, &mut data)?;
    emit_crc32(&mut a, &mut data)?;
    let msg = data.add_str("crc32(\"123456789\") = 0x");
    common::emit_print32(&mut a, r.serial, msg)?;
    a.mov(eax, dword_ptr(RESULTS + 12))?;
    a.call(r.print_hex)?;
    let msg = data.add_str("\r\nbye\r\n");
    common::emit_print32(&mut a, r.serial, msg)?;
    common::emit_power_off(&mut a)?;
    emit_number_routines(&mut a, r)?;
    r.serial.emit(&mut a)?;
    let code32 = a.assemble(u64::from(common::CODE32_LINEAR))?;

    let image = common::link(&code16, &code32, &data)?;
    Ok(Program { image, insns: None })
}

/// Start-up, the two real-mode lines, the switch to protected mode.
fn real_mode_part(data: &mut common::DataArea) -> GenResult<Vec<u8>> {
    let banner = data.add_str("Nestor demo ROM: alive\r\n");
    let real = data.add_str("real mode: COM1 ready, entering 32-bit protected mode\r\n");

    let mut a = CodeAssembler::new(16)?;
    let serial = SerialRoutines::new(&mut a);
    common::emit_real_mode_start(&mut a)?;
    a.mov(ax, u32::from(common::ROM_SEGMENT))?;
    a.mov(ds, ax)?;
    for msg in [banner, real] {
        a.mov(si, msg)?;
        a.call(serial.puts)?;
    }
    a.xor(ax, ax)?;
    a.mov(ds, ax)?;
    common::emit_enter_protected_mode(&mut a)?;
    serial.emit(&mut a)?;
    Ok(a.assemble(u64::from(common::CODE16_OFFSET))?)
}

/// Marks every composite below [`LIMIT`] in the byte array at [`SIEVE`].
fn emit_sieve(a: &mut CodeAssembler) -> GenResult<()> {
    a.mov(edi, SIEVE)?;
    a.mov(ecx, LIMIT)?;
    a.xor(eax, eax)?;
    a.rep().stosb()?;
    a.mov(byte_ptr(SIEVE), 1u32)?; // 0 and 1 are not prime
    a.mov(byte_ptr(SIEVE + 1), 1u32)?;
    a.mov(ebx, 2u32)?; // i
    let mut outer = a.create_label();
    let mut mark = a.create_label();
    let mut next = a.create_label();
    let mut done = a.create_label();
    a.set_label(&mut outer)?;
    a.mov(eax, ebx)?;
    a.imul_2(eax, ebx)?; // j = i * i
    a.cmp(eax, LIMIT)?;
    a.jae(done)?;
    a.cmp(byte_ptr(ebx + SIEVE), 0)?;
    a.jne(next)?; // i is composite: its multiples are marked already
    a.set_label(&mut mark)?;
    a.mov(byte_ptr(eax + SIEVE), 1u32)?;
    a.add(eax, ebx)?;
    a.cmp(eax, LIMIT)?;
    a.jb(mark)?;
    a.set_label(&mut next)?;
    a.inc(ebx)?;
    a.jmp(outer)?;
    a.set_label(&mut done)?;
    Ok(())
}

/// Counts, sums and finds the largest prime, stores them at [`RESULTS`] and prints
/// "sieve: N primes below 1000, sum S (0xHHHHHHHH), largest L\r\n".
fn emit_sieve_report(
    a: &mut CodeAssembler,
    r: Routines,
    data: &mut common::DataArea,
) -> GenResult<()> {
    a.xor(ecx, ecx)?; // count
    a.xor(edx, edx)?; // sum
    a.xor(ebx, ebx)?; // largest
    a.mov(esi, 2u32)?;
    let mut scan = a.create_label();
    let mut composite = a.create_label();
    a.set_label(&mut scan)?;
    a.cmp(byte_ptr(esi + SIEVE), 0)?;
    a.jne(composite)?;
    a.inc(ecx)?;
    a.add(edx, esi)?;
    a.mov(ebx, esi)?;
    a.set_label(&mut composite)?;
    a.inc(esi)?;
    a.cmp(esi, LIMIT)?;
    a.jb(scan)?;
    a.mov(dword_ptr(RESULTS), ecx)?;
    a.mov(dword_ptr(RESULTS + 4), edx)?;
    a.mov(dword_ptr(RESULTS + 8), ebx)?;

    let parts: [(&str, u32, CodeLabel); 4] = [
        ("sieve: ", RESULTS, r.print_dec),
        (" primes below 1000, sum ", RESULTS + 4, r.print_dec),
        (" (0x", RESULTS + 4, r.print_hex),
        ("), largest ", RESULTS + 8, r.print_dec),
    ];
    for (text, value, routine) in parts {
        let msg = data.add_str(text);
        common::emit_print32(a, r.serial, msg)?;
        a.mov(eax, dword_ptr(value))?;
        a.call(routine)?;
    }
    let msg = data.add_str("\r\n");
    common::emit_print32(a, r.serial, msg)
}

/// CRC-32 of "123456789" (stored in the data area) into the dword at RESULTS + 12.
fn emit_crc32(a: &mut CodeAssembler, data: &mut common::DataArea) -> GenResult<()> {
    let input = "123456789";
    let at = data.add_str(input);
    a.mov(esi, linear(at))?;
    a.mov(ecx, input.len() as u32)?;
    a.mov(eax, 0xFFFF_FFFFu32)?;
    let mut byte = a.create_label();
    let mut bit = a.create_label();
    let mut no_xor = a.create_label();
    a.set_label(&mut byte)?;
    a.xor(al, byte_ptr(esi))?;
    a.inc(esi)?;
    a.mov(bl, 8u32)?;
    a.set_label(&mut bit)?;
    a.shr(eax, 1)?;
    a.jnc(no_xor)?;
    a.xor(eax, 0xEDB8_8320u32)?;
    a.set_label(&mut no_xor)?;
    a.dec(bl)?;
    a.jnz(bit)?;
    a.loop_(byte)?;
    a.not(eax)?;
    a.mov(dword_ptr(RESULTS + 12), eax)?;
    Ok(())
}

/// `print_dec` and `print_hex`.
fn emit_number_routines(a: &mut CodeAssembler, mut r: Routines) -> GenResult<()> {
    // print_dec: push the decimal digits (least significant first), then pop and print.
    a.set_label(&mut r.print_dec)?;
    a.push(ebx)?;
    a.push(ecx)?;
    a.mov(ebx, 10u32)?;
    a.xor(ecx, ecx)?;
    let mut divide = a.create_label();
    let mut emit = a.create_label();
    a.set_label(&mut divide)?;
    a.xor(edx, edx)?;
    a.div(ebx)?;
    a.push(edx)?;
    a.inc(ecx)?;
    a.test(eax, eax)?;
    a.jnz(divide)?;
    a.set_label(&mut emit)?;
    a.pop(eax)?;
    a.add(al, b'0' as u32)?;
    a.call(r.serial.putc)?;
    a.loop_(emit)?;
    a.pop(ecx)?;
    a.pop(ebx)?;
    a.ret()?;

    // print_hex: rotate each nibble into the low bits, most significant first.
    a.set_label(&mut r.print_hex)?;
    a.push(ebx)?;
    a.push(ecx)?;
    a.mov(ebx, eax)?;
    a.mov(ecx, 8u32)?;
    let mut nibble = a.create_label();
    let mut digit = a.create_label();
    a.set_label(&mut nibble)?;
    a.rol(ebx, 4)?;
    a.mov(al, bl)?;
    a.and(al, 0x0F)?;
    a.cmp(al, 10)?;
    a.jb(digit)?;
    a.add(al, u32::from(b'A' - b'0' - 10))?;
    a.set_label(&mut digit)?;
    a.add(al, u32::from(b'0'))?;
    a.call(r.serial.putc)?;
    a.loop_(nibble)?;
    a.pop(ecx)?;
    a.pop(ebx)?;
    a.ret()?;
    Ok(())
}
