//! Workload API endpoint addresses: the `SPIFFE_ENDPOINT_SOCKET` URI forms of the SPIFFE
//! Workload Endpoint specification (digest `shared/specs/spiffe.md` §5.1).
//!
//! Two forms are accepted:
//!
//! - `unix:///absolute/path` (no authority, an absolute path, nothing else), and the
//!   equivalent `unix:/absolute/path` that go-spiffe and rust-spiffe also accept;
//! - `tcp://<IP>:<port>` with an IP literal (IPv6 in brackets) and a port, nothing else.
//!
//! Everything else — relative Unix paths, host names, user information, queries,
//! fragments, TCP paths and other schemes — is rejected with an [`AddressError`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The environment variable that holds the Workload API address.
pub const ENDPOINT_SOCKET_ENV: &str = "SPIFFE_ENDPOINT_SOCKET";

/// Where the Workload API is served.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EndpointAddress {
    /// A Unix domain socket at an absolute path.
    Unix(PathBuf),
    /// A TCP socket at an IP address and port.
    Tcp(SocketAddr),
}

/// Why a Workload API address was rejected.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// `SPIFFE_ENDPOINT_SOCKET` is not set (or is empty).
    #[error("{ENDPOINT_SOCKET_ENV} is not set")]
    NotSet,
    /// `SPIFFE_ENDPOINT_SOCKET` is not valid Unicode.
    #[error("{ENDPOINT_SOCKET_ENV} is not valid UTF-8")]
    NotUnicode,
    /// The address has no `scheme:` prefix.
    #[error("workload endpoint address {0:?} has no scheme (expected unix: or tcp:)")]
    MissingScheme(String),
    /// The scheme is neither `unix` nor `tcp`.
    #[error("workload endpoint scheme {0:?} is not supported (expected unix or tcp)")]
    UnsupportedScheme(String),
    /// The address has a `?query`.
    #[error("workload endpoint address must not have a query")]
    Query,
    /// The address has a `#fragment`.
    #[error("workload endpoint address must not have a fragment")]
    Fragment,
    /// The address has `user@` information.
    #[error("workload endpoint address must not have user information")]
    UserInfo,
    /// A `unix:` address names a host (`unix://host/path`).
    #[error("unix workload endpoint must not have an authority (use unix:///absolute/path)")]
    UnixAuthority,
    /// A `unix:` address has no path.
    #[error("unix workload endpoint has no socket path")]
    MissingPath,
    /// A `unix:` address has a relative path.
    #[error("unix workload endpoint path must be absolute")]
    RelativePath,
    /// A `unix:` path has a bad percent escape.
    #[error("unix workload endpoint path has an invalid percent escape")]
    BadEscape,
    /// A `tcp:` address is not of the form `tcp://host:port`.
    #[error("tcp workload endpoint must be tcp://<ip>:<port>")]
    TcpForm,
    /// A `tcp:` address has a path.
    #[error("tcp workload endpoint must not have a path")]
    TcpPath,
    /// A `tcp:` address has no port.
    #[error("tcp workload endpoint has no port")]
    MissingPort,
    /// A `tcp:` port is not a number in 1..=65535.
    #[error("tcp workload endpoint port {0:?} is invalid")]
    InvalidPort(String),
    /// A `tcp:` host is not an IP literal.
    #[error("tcp workload endpoint host {0:?} is not an IP address")]
    HostNotIp(String),
}

impl EndpointAddress {
    /// Parses an address in one of the `SPIFFE_ENDPOINT_SOCKET` forms.
    pub fn parse(input: &str) -> Result<EndpointAddress, AddressError> {
        let (scheme, rest) = input
            .split_once(':')
            .filter(|(scheme, _)| !scheme.is_empty())
            .ok_or_else(|| AddressError::MissingScheme(input.to_owned()))?;
        if rest.contains('#') {
            return Err(AddressError::Fragment);
        }
        if rest.contains('?') {
            return Err(AddressError::Query);
        }
        if scheme.eq_ignore_ascii_case("unix") {
            parse_unix(rest)
        } else if scheme.eq_ignore_ascii_case("tcp") {
            parse_tcp(rest)
        } else {
            Err(AddressError::UnsupportedScheme(scheme.to_owned()))
        }
    }

    /// Reads and parses the `SPIFFE_ENDPOINT_SOCKET` environment variable.
    pub fn from_env() -> Result<EndpointAddress, AddressError> {
        from_var(std::env::var(ENDPOINT_SOCKET_ENV))
    }

    /// The socket path, for a Unix address.
    pub fn unix_path(&self) -> Option<&Path> {
        match self {
            EndpointAddress::Unix(path) => Some(path),
            EndpointAddress::Tcp(_) => None,
        }
    }
}

fn from_var(value: Result<String, std::env::VarError>) -> Result<EndpointAddress, AddressError> {
    match value {
        Ok(value) if value.is_empty() => Err(AddressError::NotSet),
        Ok(value) => EndpointAddress::parse(&value),
        Err(std::env::VarError::NotPresent) => Err(AddressError::NotSet),
        Err(std::env::VarError::NotUnicode(_)) => Err(AddressError::NotUnicode),
    }
}

fn parse_unix(rest: &str) -> Result<EndpointAddress, AddressError> {
    let path = match rest.strip_prefix("//") {
        Some(after) => {
            let authority_end = after.find('/').unwrap_or(after.len());
            let authority = &after[..authority_end];
            if authority.contains('@') {
                return Err(AddressError::UserInfo);
            }
            if !authority.is_empty() {
                return Err(AddressError::UnixAuthority);
            }
            &after[authority_end..]
        }
        None => rest,
    };
    if path.is_empty() {
        return Err(AddressError::MissingPath);
    }
    if !path.starts_with('/') {
        return Err(AddressError::RelativePath);
    }
    if path == "/" {
        return Err(AddressError::MissingPath);
    }
    Ok(EndpointAddress::Unix(percent_decode(path)?))
}

fn parse_tcp(rest: &str) -> Result<EndpointAddress, AddressError> {
    let after = rest.strip_prefix("//").ok_or(AddressError::TcpForm)?;
    let authority_end = after.find('/').unwrap_or(after.len());
    let (authority, path) = after.split_at(authority_end);
    if authority.contains('@') {
        return Err(AddressError::UserInfo);
    }
    if !path.is_empty() {
        return Err(AddressError::TcpPath);
    }
    if authority.is_empty() {
        return Err(AddressError::TcpForm);
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after_host) = bracketed.split_once(']').ok_or(AddressError::TcpForm)?;
        let ip: Ipv6Addr = host.parse().map_err(|_| AddressError::HostNotIp(format!("[{host}]")))?;
        let port = match after_host.strip_prefix(':') {
            Some(port) => port,
            None if after_host.is_empty() => return Err(AddressError::MissingPort),
            None => return Err(AddressError::TcpForm),
        };
        (IpAddr::V6(ip), port)
    } else {
        let Some((host, port)) = authority.rsplit_once(':') else {
            // Distinguish "no port" on an IP from a host name without a port.
            return Err(match authority.parse::<Ipv4Addr>() {
                Ok(_) => AddressError::MissingPort,
                Err(_) => AddressError::HostNotIp(authority.to_owned()),
            });
        };
        let ip: Ipv4Addr = host.parse().map_err(|_| AddressError::HostNotIp(host.to_owned()))?;
        (IpAddr::V4(ip), port)
    };
    if port.is_empty() {
        return Err(AddressError::MissingPort);
    }
    let port_number: u16 = port
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| port.parse().ok())
        .flatten()
        .filter(|p| *p != 0)
        .ok_or_else(|| AddressError::InvalidPort(port.to_owned()))?;
    Ok(EndpointAddress::Tcp(SocketAddr::new(host, port_number)))
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode(path: &str) -> Result<PathBuf, AddressError> {
    use std::os::unix::ffi::OsStringExt;
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_value);
            let lo = bytes.get(i + 2).copied().and_then(hex_value);
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => return Err(AddressError::BadEscape),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    if out.contains(&0) {
        return Err(AddressError::BadEscape);
    }
    Ok(PathBuf::from(std::ffi::OsString::from_vec(out)))
}

fn percent_encode_path(path: &Path, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    use std::os::unix::ffi::OsStrExt;
    for &b in path.as_os_str().as_bytes() {
        let plain = b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b);
        if plain {
            write!(f, "{}", char::from(b))?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

impl fmt::Display for EndpointAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointAddress::Unix(path) => {
                f.write_str("unix://")?;
                percent_encode_path(path, f)
            }
            EndpointAddress::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

impl FromStr for EndpointAddress {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EndpointAddress::parse(s)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn accepts_the_spec_forms() {
        let cases: &[(&str, EndpointAddress, &str)] = &[
            (
                "unix:///run/spire/agent.sock",
                EndpointAddress::Unix("/run/spire/agent.sock".into()),
                "unix:///run/spire/agent.sock",
            ),
            (
                "unix:/run/agent.sock",
                EndpointAddress::Unix("/run/agent.sock".into()),
                "unix:///run/agent.sock",
            ),
            (
                "UNIX:///tmp/a%20b.sock",
                EndpointAddress::Unix("/tmp/a b.sock".into()),
                "unix:///tmp/a%20b.sock",
            ),
            (
                "tcp://127.0.0.1:8000",
                EndpointAddress::Tcp("127.0.0.1:8000".parse().unwrap()),
                "tcp://127.0.0.1:8000",
            ),
            (
                "tcp://[::1]:8081",
                EndpointAddress::Tcp("[::1]:8081".parse().unwrap()),
                "tcp://[::1]:8081",
            ),
        ];
        for (input, want, display) in cases {
            let got = EndpointAddress::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(&got, want, "{input}");
            assert_eq!(got.to_string(), *display, "{input}");
            assert_eq!(
                EndpointAddress::parse(&got.to_string()).unwrap(),
                got,
                "round trip of {input}"
            );
        }
    }

    #[test]
    fn rejects_everything_else() {
        use AddressError as E;
        let cases: &[(&str, AddressError)] = &[
            ("", E::MissingScheme(String::new())),
            ("/run/agent.sock", E::MissingScheme("/run/agent.sock".into())),
            ("http://127.0.0.1:80", E::UnsupportedScheme("http".into())),
            ("unix:agent.sock", E::RelativePath),
            ("unix:", E::MissingPath),
            ("unix://", E::MissingPath),
            ("unix:///", E::MissingPath),
            ("unix://host/run/agent.sock", E::UnixAuthority),
            ("unix://user@/run/agent.sock", E::UserInfo),
            ("unix:///run/agent.sock?x=1", E::Query),
            ("unix:///run/agent.sock#frag", E::Fragment),
            ("unix:///run/a%zz.sock", E::BadEscape),
            ("unix:///run/a%00.sock", E::BadEscape),
            ("tcp:127.0.0.1:8000", E::TcpForm),
            ("tcp://", E::TcpForm),
            ("tcp://127.0.0.1:8000/foo", E::TcpPath),
            ("tcp://127.0.0.1:8000/", E::TcpPath),
            ("tcp://localhost:8000", E::HostNotIp("localhost".into())),
            ("tcp://localhost", E::HostNotIp("localhost".into())),
            ("tcp://127.0.0.1", E::MissingPort),
            ("tcp://127.0.0.1:", E::MissingPort),
            ("tcp://[::1]", E::MissingPort),
            ("tcp://127.0.0.1:http", E::InvalidPort("http".into())),
            ("tcp://127.0.0.1:0", E::InvalidPort("0".into())),
            ("tcp://127.0.0.1:70000", E::InvalidPort("70000".into())),
            ("tcp://127.0.0.1:+80", E::InvalidPort("+80".into())),
            ("tcp://::1:8000", E::HostNotIp("::1".into())),
            ("tcp://[::1]x", E::TcpForm),
            ("tcp://user@127.0.0.1:8000", E::UserInfo),
            ("tcp://127.0.0.1:8000?x", E::Query),
            ("tcp://127.0.0.1:8000#x", E::Fragment),
        ];
        for (input, want) in cases {
            assert_eq!(EndpointAddress::parse(input).as_ref(), Err(want), "{input}");
        }
    }

    #[test]
    fn environment_variable_values() {
        use std::env::VarError;
        assert_eq!(from_var(Err(VarError::NotPresent)), Err(AddressError::NotSet));
        assert_eq!(from_var(Ok(String::new())), Err(AddressError::NotSet));
        assert_eq!(
            from_var(Err(VarError::NotUnicode("x".into()))),
            Err(AddressError::NotUnicode)
        );
        assert_eq!(
            from_var(Ok("unix:///run/agent.sock".into())),
            Ok(EndpointAddress::Unix("/run/agent.sock".into()))
        );
    }

    #[test]
    fn unix_path_accessor() {
        let unix = EndpointAddress::parse("unix:///a.sock").unwrap();
        assert_eq!(unix.unix_path(), Some(Path::new("/a.sock")));
        let tcp = EndpointAddress::parse("tcp://10.0.0.1:1").unwrap();
        assert_eq!(tcp.unix_path(), None);
    }
}
