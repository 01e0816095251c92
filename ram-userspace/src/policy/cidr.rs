//! `cidr = "..."` rules: an address block, IPv4 or IPv6.

use std::{fmt, net::IpAddr, str::FromStr};

/// An address block with no host bits set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    fn max_prefix(addr: &IpAddr) -> u8 {
        if addr.is_ipv4() {
            32
        } else {
            128
        }
    }

    /// The block of `prefix` bits (no longer than this one's) holding
    /// this one.
    pub fn widened(&self, prefix: u8) -> Cidr {
        let prefix = prefix.min(self.prefix);
        let addr = match self.addr {
            IpAddr::V4(a) => IpAddr::from(mask_bits(&a.octets(), prefix)),
            IpAddr::V6(a) => IpAddr::from(mask_bits(&a.octets(), prefix)),
        };
        Cidr { addr, prefix }
    }

    /// True when `addr` lies inside this block.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                mask_bits(&net.octets(), self.prefix) == mask_bits(&a.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                mask_bits(&net.octets(), self.prefix) == mask_bits(&a.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

/// `bytes` with everything past the first `prefix` bits cleared.
fn mask_bits<const N: usize>(bytes: &[u8; N], prefix: u8) -> [u8; N] {
    let mut out = *bytes;
    for (i, byte) in out.iter_mut().enumerate() {
        let keep = (prefix as usize).saturating_sub(i * 8).min(8);
        *byte &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
    out
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr =
            addr_text.trim().parse().map_err(|_| format!("`{addr_text}` is not an IPv4 or IPv6 address"))?;
        let max = Self::max_prefix(&addr);
        let prefix = match prefix_text {
            None => max,
            Some(p) => {
                let prefix: u8 = p.trim().parse().map_err(|_| format!("prefix length `{p}` is not a number"))?;
                if prefix > max {
                    return Err(format!("prefix length {prefix} exceeds {max}"));
                }
                prefix
            }
        };
        let network = match addr {
            IpAddr::V4(a) => IpAddr::from(mask_bits(&a.octets(), prefix)),
            IpAddr::V6(a) => IpAddr::from(mask_bits(&a.octets(), prefix)),
        };
        if network != addr {
            return Err(format!("host bits are set; the block is {network}/{prefix}"));
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blocks_and_bare_addresses() {
        let c: Cidr = "10.20.0.0/16".parse().unwrap();
        assert_eq!(c.prefix, 16);
        assert!(c.contains("10.20.255.1".parse().unwrap()));
        assert!(!c.contains("10.21.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(one.prefix, 32);
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn refuses_bad_blocks_with_a_reason() {
        assert_eq!("10.0.0.0/33".parse::<Cidr>().unwrap_err(), "prefix length 33 exceeds 32");
        assert_eq!("10.20.1.0/16".parse::<Cidr>().unwrap_err(), "host bits are set; the block is 10.20.0.0/16");
        assert!("10.0.0/8".parse::<Cidr>().unwrap_err().contains("not an IPv4 or IPv6 address"));
        assert!("10.0.0.0/x".parse::<Cidr>().unwrap_err().contains("not a number"));
        assert!("2001:db8::1/129".parse::<Cidr>().is_err());
    }
}
