//! Types and pure logic shared by ram's kernel programs and its userspace.
//!
//! Everything here compiles for `bpfel-unknown-none` (no_std, no allocation, no
//! panics) and for the host, where it is unit-tested. The kernel programs are
//! thin wrappers around these functions, so the host tests are the contract.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod bounded;
pub mod dns;
pub mod event;
pub mod family;
pub mod maps;
pub mod message;
pub mod name;
pub mod verdict;
