//! Where the metrics are served: `IP:PORT`, or `unix:/PATH` for a unix
//! socket. Parsed the same for the policy's `[metrics] listen` and for
//! `ramd --metrics`, so both refuse the same values for the same reasons.

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
};

/// `sun_path` holds 108 bytes, the terminating NUL included.
const MAX_UNIX_PATH: usize = 107;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => write!(f, "{addr}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl FromStr for ListenAddr {
    /// Why the value is refused, to follow `field = "value": `.
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            return unix_path(path).map(ListenAddr::Unix);
        }
        if let Ok(addr) = text.parse::<SocketAddr>() {
            if addr.port() == 0 {
                // The kernel would pick a port no scraper knows.
                return Err("port 0 is not a fixed port; give the port Prometheus scrapes, as in 127.0.0.1:9464".into());
            }
            return Ok(ListenAddr::Tcp(addr));
        }
        if text.parse::<std::net::IpAddr>().is_ok() {
            return Err(format!("has no port; give IP:PORT, as in {}", with_port(text)));
        }
        Err("must be IP:PORT (127.0.0.1:9464, [::1]:9464; a host name is not resolved) or unix:/PATH".into())
    }
}

fn with_port(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]:9464")
    } else {
        format!("{ip}:9464")
    }
}

fn unix_path(text: &str) -> Result<PathBuf, String> {
    let path = Path::new(text);
    if !path.is_absolute() {
        return Err("a unix socket needs an absolute path, as in unix:/run/ram/metrics.sock".into());
    }
    if text.contains('\0') {
        return Err("a unix socket path cannot hold a NUL byte".into());
    }
    if text.ends_with('/') {
        return Err("names a directory; give the socket's file name, as in unix:/run/ram/metrics.sock".into());
    }
    if text.len() > MAX_UNIX_PATH {
        return Err(format!("a unix socket path holds at most {MAX_UNIX_PATH} bytes, this one {}", text.len()));
    }
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ListenAddr, String> {
        text.parse()
    }

    #[test]
    fn ip_and_port_or_a_unix_socket_path() {
        assert_eq!(parse("127.0.0.1:9464"), Ok(ListenAddr::Tcp("127.0.0.1:9464".parse().unwrap())));
        assert_eq!(parse("0.0.0.0:9464"), Ok(ListenAddr::Tcp("0.0.0.0:9464".parse().unwrap())));
        assert_eq!(parse("[::1]:9464"), Ok(ListenAddr::Tcp("[::1]:9464".parse().unwrap())));
        assert_eq!(parse("unix:/run/ram/metrics.sock"), Ok(ListenAddr::Unix("/run/ram/metrics.sock".into())));
        // Shown as written, so messages name the value the admin wrote.
        for text in ["127.0.0.1:9464", "[::1]:9464", "unix:/run/ram/metrics.sock"] {
            assert_eq!(parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn anything_else_is_refused_saying_why() {
        let reason = |text: &str| parse(text).unwrap_err();
        assert!(reason("127.0.0.1").contains("has no port; give IP:PORT, as in 127.0.0.1:9464"));
        assert!(reason("::1").contains("as in [::1]:9464"));
        assert!(reason("localhost:9464").contains("a host name is not resolved"));
        assert!(reason(":9464").contains("must be IP:PORT"));
        assert!(reason("").contains("must be IP:PORT"));
        assert!(reason("127.0.0.1:0").contains("port 0"));
        assert!(reason("127.0.0.1:65536").contains("must be IP:PORT"));
        assert!(reason("unix:metrics.sock").contains("absolute path"));
        assert!(reason("unix:").contains("absolute path"));
        assert!(reason("unix:/run/ram/").contains("directory"));
        assert!(reason(&format!("unix:/{}", "a".repeat(107))).contains("at most 107 bytes"));
        assert!(parse(&format!("unix:/{}", "a".repeat(106))).is_ok());
    }
}
