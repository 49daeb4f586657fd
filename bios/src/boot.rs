//! INT 19h (bootstrap: the boot order, boot sectors, El Torito) and INT 18h (no boot).

use crate::call::{r, Call, Outcome};
use crate::disk::ata::Progress;
use crate::disk::eltorito::{self, BootEntry, CdBoot};
use crate::disk::{floppy, has_boot_signature, transfer, Dest, Key, CD_FIRST_DRIVE};
use crate::video::print;
use crate::{BiosState, BootDevice, TrapResult};
use nestor_cpu::state::rflags;
use nestor_cpu::SegReg;
use serde::{Deserialize, Serialize};

/// Where the boot sector goes.
const BOOT_ADDR: u64 = 0x7C00;

/// How far INT 19h got, kept across RETRY traps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootProgress {
    /// Position in the boot order.
    pub index: usize,
    /// Step within the device's boot sequence.
    pub step: u8,
    pub announced: bool,
    pub catalog_lba: u32,
    pub entry: Option<BootEntry>,
}

enum Try {
    /// Not done: how the stub should wait.
    Busy(Outcome),
    Booted {
        cs: u16,
        ip: u16,
        drive: u8,
    },
    Failed(String),
}

pub fn int19(st: &mut BiosState, c: &mut Call) -> Outcome {
    let mut prog = st.boot.take().unwrap_or_default();
    loop {
        let Some(&dev) = st.boot_order.get(prog.index) else {
            print(st, c.p, "No bootable device.\r\n");
            return Outcome::NoBoot;
        };
        if !prog.announced {
            let name = match dev {
                BootDevice::HardDisk => "Hard Disk",
                BootDevice::Cdrom => "CD-ROM",
                BootDevice::Floppy => "Floppy",
                BootDevice::Kernel => "the kernel image",
            };
            print(st, c.p, &format!("Booting from {name}...\r\n"));
            prog.announced = true;
        }
        let attempt = match dev {
            BootDevice::Kernel => {
                st.pending = None;
                return Outcome::Jumped(TrapResult::BootKernel);
            }
            BootDevice::HardDisk => try_hard_disk(st, c),
            BootDevice::Cdrom => try_cdrom(st, c, &mut prog),
            BootDevice::Floppy => try_floppy(st, c),
        };
        match attempt {
            Try::Busy(how) => {
                st.boot = Some(prog);
                return how;
            }
            Try::Booted { cs, ip, drive } => {
                st.pending = None;
                jump(c, cs, ip, drive);
                return Outcome::Jumped(TrapResult::Continue);
            }
            Try::Failed(why) => {
                print(st, c.p, &format!("Boot failed: {why}\r\n"));
                prog = BootProgress {
                    index: prog.index + 1,
                    ..BootProgress::default()
                };
            }
        }
    }
}

/// INT 18h: the last resort. The ROM halts after it.
pub fn int18(st: &mut BiosState, c: &mut Call) -> Outcome {
    print(st, c.p, "No bootable device -- system halted.\r\n");
    Outcome::ReturnThen(TrapResult::BootFailed)
}

/// Starts the boot code at `cs:ip` with DL = `drive`, interrupts on, a fresh stack.
fn jump(c: &mut Call, cs: u16, ip: u16, drive: u8) {
    c.set_seg(SegReg::Cs, cs);
    c.cpu.rip = u64::from(ip);
    for s in [SegReg::Ds, SegReg::Es, SegReg::Ss] {
        c.set_seg(s, 0);
    }
    c.set32(r::SP, BOOT_ADDR as u32);
    c.set32(r::DX, u32::from(drive));
    c.cpu.rflags = (c.cpu.rflags | rflags::IF) & !rflags::DF;
}

fn try_hard_disk(st: &mut BiosState, c: &mut Call) -> Try {
    let Some(dev) = st.disks.hard.first().cloned() else {
        return Try::Failed("no hard disk".into());
    };
    let key = Key {
        drive: 0x80,
        lba: 0,
        count: 1,
        write: false,
        addr: BOOT_ADDR,
    };
    match transfer(st, c.p, key, &dev, Dest::Guest(BOOT_ADDR)).0 {
        Progress::Busy => Try::Busy(Outcome::Retry),
        Progress::Failed(e) => Try::Failed(format!("could not read the hard disk (code {e:02X})")),
        Progress::Done if has_boot_signature(c.p, BOOT_ADDR) => Try::Booted {
            cs: 0,
            ip: BOOT_ADDR as u16,
            drive: 0x80,
        },
        Progress::Done => Try::Failed("not a bootable disk".into()),
    }
}

fn try_floppy(st: &mut BiosState, c: &mut Call) -> Try {
    if st.disks.floppy[0] == 0 {
        return Try::Failed("no floppy drive".into());
    }
    let req = floppy::Request {
        drive: 0,
        cylinder: 0,
        head: 0,
        sector: 1,
        count: 1,
        addr: BOOT_ADDR as u32,
        write: false,
    };
    match floppy::transfer(st, c.p, req) {
        floppy::Progress::WaitIrq => Try::Busy(Outcome::Wait),
        floppy::Progress::Failed(e) => {
            Try::Failed(format!("could not read the floppy (code {e:02X})"))
        }
        floppy::Progress::Done(_) => Try::Booted {
            cs: 0,
            ip: BOOT_ADDR as u16,
            drive: 0x00,
        },
    }
}

/// El Torito from the first CD-ROM: boot record (step 0), catalog (1), image (2).
fn try_cdrom(st: &mut BiosState, c: &mut Call, prog: &mut BootProgress) -> Try {
    let Some(dev) = st.disks.cd.first().cloned() else {
        return Try::Failed("no CD-ROM drive".into());
    };
    let drive = CD_FIRST_DRIVE;
    loop {
        let (lba, count) = match prog.step {
            0 => (eltorito::BOOT_RECORD_LBA, 1),
            1 => (prog.catalog_lba, 1),
            _ => {
                let Some(e) = prog.entry else {
                    return Try::Failed("no boot entry".into());
                };
                let sectors = if e.media == 0 {
                    u32::from(e.sector_count.max(1)).div_ceil(4)
                } else {
                    1
                };
                (e.lba, sectors)
            }
        };
        let data = match eltorito::read_cd(st, c, &dev, drive, lba, count) {
            Ok(d) => d,
            Err(None) => return Try::Busy(Outcome::Retry),
            Err(Some(e)) => {
                return Try::Failed(format!("could not read the CD-ROM (code {e:02X})"))
            }
        };
        match prog.step {
            0 => {
                let Some(cat) = eltorito::parse_boot_record(&data) else {
                    return Try::Failed("no El Torito boot record on the CD".into());
                };
                prog.catalog_lba = cat;
            }
            1 => {
                let Some(entry) = eltorito::parse_catalog(&data) else {
                    return Try::Failed("no bootable entry in the boot catalog".into());
                };
                prog.entry = Some(entry);
            }
            _ => return load_cd_image(st, c, prog, &data, drive),
        }
        prog.step += 1;
    }
}

fn load_cd_image(
    st: &mut BiosState,
    c: &mut Call,
    prog: &BootProgress,
    data: &[u8],
    drive: u8,
) -> Try {
    let Some(e) = prog.entry else {
        return Try::Failed("no boot entry".into());
    };
    let (drive, at, len) = match e.media {
        0 => (
            drive,
            u64::from(e.load_segment) << 4,
            usize::from(e.sector_count.max(1)) * 512,
        ),
        1..=3 => (0x00, BOOT_ADDR, 512),
        _ => return Try::Failed("hard disk emulation is not supported".into()),
    };
    let Some(bytes) = data.get(..len) else {
        return Try::Failed("short boot image".into());
    };
    c.p.write_mem(at, bytes);
    st.cd_boot = Some(CdBoot {
        cd: 0,
        drive,
        entry: e,
        active: true,
    });
    let (cs, ip) = if e.media == 0 {
        (e.load_segment, 0)
    } else {
        (0, BOOT_ADDR as u16)
    };
    Try::Booted { cs, ip, drive }
}
