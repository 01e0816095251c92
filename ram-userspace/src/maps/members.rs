//! `RAM_MEMBERS` and what `ram_cgroup_mkdir` needs to fill it: the
//! container cgroups the container targets hold (see
//! `ram_common::maps::Member`).

use ram_common::maps::{
    CgroupLayout, CgroupPattern, Member, CONTAINER_PATTERNS, MAP_CGROUP_LAYOUT, MAP_CONTAINER_PATTERNS, MAP_MEMBERS,
    MEMBER_PENDING,
};

use super::Maps;
use super::{MapsError, Result};

impl Maps {
    /// Every entry: cgroup id → member.
    pub fn members(&self) -> Vec<(u64, Member)> {
        self.members.iter().filter_map(|row| row.ok()).collect()
    }

    pub fn set_member(&mut self, cgroup_id: u64, member: Member) -> Result<()> {
        self.members.insert(cgroup_id, member, 0).map_err(|e| MapsError::map(MAP_MEMBERS, e))
    }

    /// Sets every entry pending, with no namespace: what a previous run
    /// decided was under its policy, whose scope numbers and trust this
    /// run's need not share. Pending, a container is judged by every
    /// container target of its runtime (all must allow) and teaches none,
    /// until this run decides it again. Returns how many entries there were.
    pub fn set_all_members_pending(&mut self) -> Result<usize> {
        let entries = self.members();
        for (cgroup_id, member) in &entries {
            let pending = Member { scope: MEMBER_PENDING, runtime: member.runtime, netns: 0 };
            if *member != pending {
                self.set_member(*cgroup_id, pending)?;
            }
        }
        Ok(entries.len())
    }

    /// Removes an entry; one already gone is no error.
    pub fn remove_member(&mut self, cgroup_id: u64) -> Result<()> {
        match self.members.remove(&cgroup_id) {
            Ok(()) => Ok(()),
            Err(aya::maps::MapError::KeyNotFound) => Ok(()),
            Err(aya::maps::MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            Err(e) => Err(MapsError::map(MAP_MEMBERS, e)),
        }
    }

    /// Writes the runtimes' container paths; unused slots are cleared.
    pub fn write_container_patterns(&mut self, patterns: &[CgroupPattern]) -> Result<()> {
        for index in 0..CONTAINER_PATTERNS {
            let row = patterns.get(index as usize).copied().unwrap_or_default();
            self.container_patterns.set(index, row, 0).map_err(|e| MapsError::map(MAP_CONTAINER_PATTERNS, e))?;
        }
        Ok(())
    }

    pub fn write_cgroup_layout(&mut self, layout: CgroupLayout) -> Result<()> {
        self.cgroup_layout.set(0, layout, 0).map_err(|e| MapsError::map(MAP_CGROUP_LAYOUT, e))
    }
}
