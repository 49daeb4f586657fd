//! The machine configuration a snapshot records, so that the file alone can be resumed: what
//! the guest sees (RAM, CPU model, firmware, drives, clock mode), plus the size and
//! modification time of every host file the guest reads, to notice a disk changed since.

use crate::clock::ClockMode;
use crate::machine::{DriveSlot, DriveSpec, MachineConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A host file as it was when the snapshot was taken.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    pub path: PathBuf,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: u128,
}

impl FileStamp {
    /// Stat `path` now.
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        let mtime_ns = meta
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(Self {
            path: path.to_path_buf(),
            size: meta.len(),
            mtime_ns,
        })
    }

    /// Why the file differs now, if it does.
    #[must_use]
    pub fn changed(&self) -> Option<String> {
        let p = self.path.display();
        match Self::of(&self.path) {
            Err(e) => Some(format!("{p}: {e}")),
            Ok(now) if now.size != self.size => {
                Some(format!("{p}: size {} is now {}", self.size, now.size))
            }
            Ok(now) if now.mtime_ns != self.mtime_ns => Some(format!("{p}: modified since")),
            Ok(_) => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SlotRecord {
    Hda,
    Hdb,
    Cdrom,
    Fda,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveRecord {
    pub slot: SlotRecord,
    pub file: FileStamp,
    /// QEMU's `-snapshot`: guest writes stayed in memory (and are not in the snapshot).
    pub snapshot: bool,
    pub read_only: bool,
}

/// The kernel Nestor's BIOS boots when INT 19h reaches it (files re-read on resume).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelRecord {
    pub kernel: FileStamp,
    pub initrd: Vec<FileStamp>,
    pub cmdline: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotConfig {
    pub ram_mib: u64,
    pub cpu_model: String,
    pub deterministic: bool,
    pub start_time_unix: i64,
    pub bios: Option<nestor_bios::BiosConfig>,
    pub drives: Vec<DriveRecord>,
    /// Set by the front end, which knows the kernel's file names (the configuration holds
    /// only its bytes).
    pub kernel: Option<KernelRecord>,
    /// Files offered to third-party firmware through fw_cfg (a VGA BIOS for SeaBIOS).
    pub fw_cfg_files: Vec<(String, Vec<u8>)>,
}

impl SnapshotConfig {
    /// What `config` describes (file stamps are taken when a snapshot is saved).
    #[must_use]
    pub fn of(config: &MachineConfig) -> Self {
        let drives = config
            .drives
            .iter()
            .map(|d| DriveRecord {
                slot: match d.slot {
                    DriveSlot::Hda => SlotRecord::Hda,
                    DriveSlot::Hdb => SlotRecord::Hdb,
                    DriveSlot::Cdrom => SlotRecord::Cdrom,
                    DriveSlot::Fda => SlotRecord::Fda,
                },
                file: FileStamp {
                    path: std::path::absolute(&d.path).unwrap_or_else(|_| d.path.clone()),
                    ..FileStamp::default()
                },
                snapshot: d.snapshot,
                read_only: d.read_only,
            })
            .collect();
        Self {
            ram_mib: config.ram_mib,
            cpu_model: config.cpu_model.clone(),
            deterministic: config.clock == ClockMode::Deterministic,
            start_time_unix: config.start_time_unix,
            bios: config.bios.clone(),
            drives,
            kernel: None,
            fw_cfg_files: config.fw_cfg_files.clone(),
        }
    }

    /// Every host file the machine reads.
    fn files_mut(&mut self) -> impl Iterator<Item = &mut FileStamp> {
        let kernel = self
            .kernel
            .iter_mut()
            .flat_map(|k| std::iter::once(&mut k.kernel).chain(k.initrd.iter_mut()));
        self.drives.iter_mut().map(|d| &mut d.file).chain(kernel)
    }

    /// Record the size and modification time of every host file now.
    pub fn stamp_files(&mut self) -> std::io::Result<()> {
        for f in self.files_mut() {
            *f = FileStamp::of(&f.path)?;
        }
        Ok(())
    }

    /// Host files that differ from what the snapshot recorded, one line each.
    #[must_use]
    pub fn changed_files(&self) -> Vec<String> {
        let kernel = self
            .kernel
            .iter()
            .flat_map(|k| std::iter::once(&k.kernel).chain(k.initrd.iter()));
        self.drives
            .iter()
            .map(|d| &d.file)
            .chain(kernel)
            .filter_map(FileStamp::changed)
            .collect()
    }

    /// The machine configuration to rebuild (host-side backends left for the caller).
    #[must_use]
    pub fn machine_config(&self, rom: Vec<u8>) -> MachineConfig {
        let mut config = MachineConfig::new(rom, self.ram_mib);
        config.cpu_model = self.cpu_model.clone();
        config.clock = if self.deterministic {
            ClockMode::Deterministic
        } else {
            ClockMode::Realtime
        };
        config.start_time_unix = self.start_time_unix;
        config.bios = self.bios.clone();
        config.fw_cfg_files = self.fw_cfg_files.clone();
        config.drives = self
            .drives
            .iter()
            .map(|d| DriveSpec {
                slot: match d.slot {
                    SlotRecord::Hda => DriveSlot::Hda,
                    SlotRecord::Hdb => DriveSlot::Hdb,
                    SlotRecord::Cdrom => DriveSlot::Cdrom,
                    SlotRecord::Fda => DriveSlot::Fda,
                },
                path: d.file.path.clone(),
                snapshot: d.snapshot,
                read_only: d.read_only,
            })
            .collect();
        config
    }

    /// The kernel for Nestor's BIOS to boot, read again from its files.
    pub fn kernel_spec(&self) -> std::io::Result<Option<crate::loader::KernelSpec>> {
        let Some(k) = &self.kernel else {
            return Ok(None);
        };
        let mut initrd = Vec::new();
        for f in &k.initrd {
            initrd.push(crate::loader::Module {
                name: f.path.display().to_string(),
                data: std::fs::read(&f.path)?,
            });
        }
        Ok(Some(crate::loader::KernelSpec {
            kernel: std::fs::read(&k.kernel.path)?,
            initrd,
            cmdline: k.cmdline.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_disk_is_noticed() {
        let dir = std::env::temp_dir().join(format!("nestor-snapcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let disk = dir.join("disk.img");
        std::fs::write(&disk, [0u8; 512]).unwrap();
        let mut mc = MachineConfig::new(vec![0; 64 << 10], 2);
        mc.drives.push(DriveSpec {
            slot: DriveSlot::Hda,
            path: disk.clone(),
            snapshot: false,
            read_only: false,
        });
        let mut c = SnapshotConfig::of(&mc);
        c.stamp_files().unwrap();
        assert!(c.changed_files().is_empty());
        assert_eq!(c.machine_config(vec![0; 64 << 10]).drives, mc.drives);
        std::fs::write(&disk, [0u8; 1024]).unwrap();
        let changed = c.changed_files();
        assert_eq!(changed.len(), 1);
        assert!(changed[0].contains("size 512 is now 1024"), "{changed:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
