//! Kernel boot after the firmware: Nestor's BIOS has run its POST (tables, devices, IVT) and
//! INT 19h chose the `--kernel` image, as SeaBIOS's linuxboot option ROM does under QEMU.
//! A Linux bzImage enters its 16-bit setup code (boot protocol 2.06+, "loading the rest of the
//! kernel" in Documentation/x86/boot.rst), which asks the BIOS for the memory map and video
//! mode itself; a Multiboot kernel is entered in flat 32-bit protected mode.

use crate::loader::{
    kind_of, load_initrd, load_multiboot, parse_setup_header, write, KernelKind, KernelSpec,
    LoadError, KERNEL_ADDR,
};
use crate::memory::GuestMemory;
use nestor_cpu::state::rflags;
use nestor_cpu::{CpuState, SegReg, Segment};

/// The real-mode part goes low in conventional memory, clear of the IVT, the BDA and the
/// boot sector area, and well below the EBDA.
const SETUP_BASE: u64 = 0x1_0000;
/// Offsets in the setup segment: code up to 0x8000, then stack and heap up to `HEAP_END`,
/// then the command line (the layout boot.rst gives for protocol 2.02+).
const SETUP_MAX: usize = 0x8000;
const HEAP_END: u64 = 0xe000;
const CMDLINE_OFF: u64 = HEAP_END;
const SEGMENT_END: u64 = 0x1_0000;

/// The setup header's fields a boot loader fills in.
mod hdr {
    pub const TYPE_OF_LOADER: u64 = 0x210;
    pub const LOADFLAGS: u64 = 0x211;
    pub const RAMDISK_IMAGE: u64 = 0x218;
    pub const RAMDISK_SIZE: u64 = 0x21c;
    pub const HEAP_END_PTR: u64 = 0x224;
    pub const CMD_LINE_PTR: u64 = 0x228;
}

/// Load `spec` and point `cpu` (in real mode, after the BIOS) at its entry. RAM from
/// `ram_top` up holds the firmware's tables and stays untouched.
pub fn load_after_firmware(
    mem: &mut GuestMemory,
    spec: &KernelSpec,
    cpu: &mut CpuState,
    ram_top: u64,
) -> Result<KernelKind, LoadError> {
    let kind = kind_of(&spec.kernel)?;
    match kind {
        KernelKind::Linux => load_linux_real_mode(mem, spec, cpu, ram_top)?,
        KernelKind::Multiboot => load_multiboot(mem, spec, cpu)?,
    }
    Ok(kind)
}

/// What can be known of `spec` before the firmware runs: a bad kernel is an error at start-up,
/// not a halted guest minutes later.
pub fn check(spec: &KernelSpec) -> Result<(), LoadError> {
    if kind_of(&spec.kernel)? == KernelKind::Linux {
        let h = parse_setup_header(&spec.kernel)?;
        let max_cmdline = (h.cmdline_size as usize).min((SEGMENT_END - CMDLINE_OFF - 1) as usize);
        if spec.cmdline.len() > max_cmdline {
            return Err(LoadError::CmdlineTooLong(spec.cmdline.len(), max_cmdline));
        }
        if h.setup_len() > SETUP_MAX {
            return Err(LoadError::NoRoom {
                what: "real-mode setup code",
                len: h.setup_len() as u64,
            });
        }
    }
    Ok(())
}

fn load_linux_real_mode(
    mem: &mut GuestMemory,
    spec: &KernelSpec,
    cpu: &mut CpuState,
    ram_top: u64,
) -> Result<(), LoadError> {
    check(spec)?;
    let k = &spec.kernel;
    let h = parse_setup_header(k)?;
    let setup_len = h.setup_len();
    let setup = k.get(..setup_len).ok_or(LoadError::TooSmall(k.len()))?;
    let pm = k.get(setup_len..).unwrap_or_default();
    if KERNEL_ADDR + pm.len() as u64 > mem.low_ram() {
        return Err(LoadError::NoRoom {
            what: "kernel",
            len: pm.len() as u64,
        });
    }
    write(mem, SETUP_BASE, setup)?;
    write(mem, KERNEL_ADDR, pm)?;
    if let Some((at, len)) = load_initrd(mem, spec, &h, ram_top)? {
        write(
            mem,
            SETUP_BASE + hdr::RAMDISK_IMAGE,
            &(at as u32).to_le_bytes(),
        )?;
        write(
            mem,
            SETUP_BASE + hdr::RAMDISK_SIZE,
            &(len as u32).to_le_bytes(),
        )?;
    }
    let mut cmdline = spec.cmdline.as_bytes().to_vec();
    cmdline.push(0);
    write(mem, SETUP_BASE + CMDLINE_OFF, &cmdline)?;
    let cmd_ptr = (SETUP_BASE + CMDLINE_OFF) as u32;
    write(mem, SETUP_BASE + hdr::CMD_LINE_PTR, &cmd_ptr.to_le_bytes())?;
    let heap_end_ptr = (HEAP_END - 0x200) as u16;
    write(
        mem,
        SETUP_BASE + hdr::HEAP_END_PTR,
        &heap_end_ptr.to_le_bytes(),
    )?;
    // Undefined loader type; the heap is usable.
    write(mem, SETUP_BASE + hdr::TYPE_OF_LOADER, &[0xff])?;
    let loadflags = h.loadflags | crate::loader::SetupHeader::CAN_USE_HEAP;
    write(mem, SETUP_BASE + hdr::LOADFLAGS, &[loadflags])?;
    enter_setup(cpu);
    Ok(())
}

/// The same boot handed to third-party firmware through fw_cfg (the items OVMF, or SeaBIOS
/// with a linuxboot option ROM, read): the setup code with the loader's header fields filled
/// in for the layout above, the protected-mode part for 1 MiB, the initrd for the highest
/// page-aligned place below `ram_top` and the kernel's limit, and the command line.
pub fn fw_cfg_linux_boot(
    spec: &KernelSpec,
    ram_top: u64,
) -> Result<nestor_fwcfg::LinuxBoot, LoadError> {
    check(spec)?;
    let k = &spec.kernel;
    let h = parse_setup_header(k)?;
    let mut setup = k.get(..h.setup_len()).unwrap_or_default().to_vec();
    let kernel = k.get(h.setup_len()..).unwrap_or_default().to_vec();
    let initrd: Vec<u8> = spec.initrd.iter().flat_map(|m| m.data.clone()).collect();
    let limit = (u64::from(h.initrd_addr_max) + 1).min(ram_top);
    let initrd_addr = match initrd.len() as u64 {
        0 => 0,
        len => limit
            .checked_sub(len)
            .map(|a| a & !0xfff)
            .filter(|&a| a >= KERNEL_ADDR + kernel.len() as u64)
            .ok_or(LoadError::NoRoom {
                what: "initrd",
                len,
            })?,
    };
    let cmdline_addr = (SETUP_BASE + CMDLINE_OFF) as u32;
    let mut put = |at: u64, bytes: &[u8]| {
        if let Some(d) = setup.get_mut(at as usize..at as usize + bytes.len()) {
            d.copy_from_slice(bytes);
        }
    };
    put(hdr::TYPE_OF_LOADER, &[0xff]);
    put(
        hdr::LOADFLAGS,
        &[h.loadflags | crate::loader::SetupHeader::CAN_USE_HEAP],
    );
    put(
        hdr::HEAP_END_PTR,
        &((HEAP_END - 0x200) as u16).to_le_bytes(),
    );
    put(hdr::CMD_LINE_PTR, &cmdline_addr.to_le_bytes());
    put(hdr::RAMDISK_IMAGE, &(initrd_addr as u32).to_le_bytes());
    put(hdr::RAMDISK_SIZE, &(initrd.len() as u32).to_le_bytes());
    Ok(nestor_fwcfg::LinuxBoot {
        setup_addr: SETUP_BASE as u32,
        setup,
        kernel_addr: KERNEL_ADDR as u32,
        kernel,
        initrd_addr: initrd_addr as u32,
        initrd,
        cmdline_addr,
        cmdline: spec.cmdline.as_bytes().to_vec(),
    })
}

/// CS = base + 0x20, IP = 0; DS = ES = FS = GS = SS = base; SP at the heap's end;
/// interrupts off, as boot.rst's sample loader leaves them.
fn enter_setup(cpu: &mut CpuState) {
    let seg = (SETUP_BASE >> 4) as u16;
    for s in [SegReg::Ds, SegReg::Es, SegReg::Fs, SegReg::Gs, SegReg::Ss] {
        cpu.seg[s as usize] = Segment::real_mode(seg);
    }
    cpu.seg[SegReg::Cs as usize] = Segment::real_mode(seg + 0x20);
    cpu.rip = 0;
    cpu.gpr = [0; 16];
    cpu.gpr[4] = HEAP_END;
    cpu.rflags &= !(rflags::IF | rflags::DF);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bzimage(setup_sects: u8, cmdline_size: u32) -> Vec<u8> {
        let mut k = vec![0u8; (usize::from(setup_sects) + 1) * 512 + 4096];
        k[0x1f1] = setup_sects;
        k[0x201] = 0x66;
        k[0x202..0x206].copy_from_slice(b"HdrS");
        k[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
        k[0x211] = 1; // LOADED_HIGH
        k[0x22c..0x230].copy_from_slice(&0x37ff_ffffu32.to_le_bytes());
        k[0x238..0x23c].copy_from_slice(&cmdline_size.to_le_bytes());
        k
    }

    fn memory() -> GuestMemory {
        GuestMemory::new(32, vec![0xff; 64 << 10]).expect("32 MiB of RAM")
    }

    fn read(mem: &GuestMemory, addr: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0; len];
        assert!(mem.read(addr, &mut b));
        b
    }

    #[test]
    fn setup_code_is_entered_in_real_mode_with_the_header_filled_in() {
        let mut mem = memory();
        let spec = KernelSpec {
            kernel: bzimage(4, 2048),
            initrd: vec![crate::loader::Module {
                name: "initrd".into(),
                data: vec![0xAB; 5000],
            }],
            cmdline: "console=ttyS0".into(),
        };
        let mut cpu = CpuState::default();
        cpu.rflags |= rflags::IF;
        let kind = load_after_firmware(&mut mem, &spec, &mut cpu, 16 << 20).expect("loads");
        assert_eq!(kind, KernelKind::Linux);
        assert_eq!(cpu.seg[SegReg::Cs as usize].base, 0x10200);
        assert_eq!(cpu.seg[SegReg::Ss as usize].base, 0x10000);
        assert_eq!((cpu.rip, cpu.gpr[4]), (0, 0xe000));
        assert_eq!(cpu.rflags & rflags::IF, 0);
        assert_eq!(read(&mem, 0x10202, 4), b"HdrS");
        assert_eq!(read(&mem, 0x10210, 2), [0xff, 0x81]);
        assert_eq!(read(&mem, 0x10224, 2), 0xde00u16.to_le_bytes());
        assert_eq!(read(&mem, 0x10228, 4), 0x1e000u32.to_le_bytes());
        assert_eq!(read(&mem, 0x1e000, 14), b"console=ttyS0\0");
        let image = u32::from_le_bytes(read(&mem, 0x10218, 4).try_into().unwrap());
        assert_eq!(read(&mem, 0x1021c, 4), 5000u32.to_le_bytes());
        assert!(
            u64::from(image) + 5000 <= 16 << 20,
            "initrd below the firmware's tables"
        );
        assert_eq!(read(&mem, u64::from(image), 5000), vec![0xAB; 5000]);
        // The protected-mode part is at 1 MiB.
        assert_eq!(read(&mem, KERNEL_ADDR, 4), [0; 4]);
    }

    #[test]
    fn fw_cfg_items_carry_the_same_layout() {
        let spec = KernelSpec {
            kernel: bzimage(4, 2048),
            initrd: vec![crate::loader::Module {
                name: "initrd".into(),
                data: vec![0xCD; 3000],
            }],
            cmdline: "quiet".into(),
        };
        let boot = fw_cfg_linux_boot(&spec, 16 << 20).expect("fits");
        assert_eq!((boot.setup_addr, boot.kernel_addr), (0x10000, 0x100000));
        assert_eq!(boot.setup.len(), 5 * 512);
        assert_eq!(boot.kernel.len(), 4096);
        assert_eq!(&boot.setup[0x210..0x212], &[0xff, 0x81]);
        assert_eq!(boot.setup[0x228..0x22c], 0x1e000u32.to_le_bytes());
        assert_eq!(boot.initrd_addr, (16 << 20) - 4096);
        assert_eq!(boot.setup[0x218..0x21c], boot.initrd_addr.to_le_bytes());
        assert_eq!(boot.setup[0x21c..0x220], 3000u32.to_le_bytes());
        assert_eq!(
            (boot.cmdline_addr, boot.cmdline.as_slice()),
            (0x1e000, &b"quiet"[..])
        );
        assert!(matches!(
            fw_cfg_linux_boot(&spec, 0x100000),
            Err(LoadError::NoRoom { .. })
        ));
    }

    #[test]
    fn oversized_setup_and_command_lines_are_clear_errors() {
        let mut mem = memory();
        let mut cpu = CpuState::default();
        let big_setup = KernelSpec {
            kernel: bzimage(70, 2048),
            ..KernelSpec::default()
        };
        assert!(matches!(
            load_after_firmware(&mut mem, &big_setup, &mut cpu, 16 << 20),
            Err(LoadError::NoRoom { .. })
        ));
        let long_cmdline = KernelSpec {
            kernel: bzimage(4, 100_000),
            cmdline: "x".repeat(9000),
            ..KernelSpec::default()
        };
        assert!(matches!(
            load_after_firmware(&mut mem, &long_cmdline, &mut cpu, 16 << 20),
            Err(LoadError::CmdlineTooLong(9000, _))
        ));
    }
}
