//! `RAM_MEMBERS` and what `ram_cgroup_mkdir` needs to fill it: the
//! container cgroups the container targets hold (see
//! `ram_common::maps::Member`).

use ram_common::maps::{
    CgroupLayout, CgroupPattern, Member, CONTAINER_PATTERNS, MAP_CGROUP_LAYOUT, MAP_CONTAINER_PATTERNS, MAP_MEMBERS,
};

use super::Maps;
use crate::error::{Error, Result};

impl Maps {
    /// Every entry: cgroup id → member.
    pub fn members(&self) -> Vec<(u64, Member)> {
        self.members.iter().filter_map(|row| row.ok()).collect()
    }

    pub fn set_member(&mut self, cgroup_id: u64, member: Member) -> Result<()> {
        self.members.insert(cgroup_id, member, 0).map_err(|e| Error::map(MAP_MEMBERS, e))
    }

    /// Removes an entry; one already gone is no error.
    pub fn remove_member(&mut self, cgroup_id: u64) -> Result<()> {
        match self.members.remove(&cgroup_id) {
            Ok(()) => Ok(()),
            Err(aya::maps::MapError::KeyNotFound) => Ok(()),
            Err(aya::maps::MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            Err(e) => Err(Error::map(MAP_MEMBERS, e)),
        }
    }

    /// Writes the runtimes' container paths; unused slots are cleared.
    pub fn write_container_patterns(&mut self, patterns: &[CgroupPattern]) -> Result<()> {
        for index in 0..CONTAINER_PATTERNS {
            let row = patterns.get(index as usize).copied().unwrap_or_default();
            self.container_patterns.set(index, row, 0).map_err(|e| Error::map(MAP_CONTAINER_PATTERNS, e))?;
        }
        Ok(())
    }

    pub fn write_cgroup_layout(&mut self, layout: CgroupLayout) -> Result<()> {
        self.cgroup_layout.set(0, layout, 0).map_err(|e| Error::map(MAP_CGROUP_LAYOUT, e))
    }
}
