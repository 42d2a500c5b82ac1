//! Who is connecting: the client's address, and the keyed hash moderators see instead of it.
//!
//! The address is the TCP peer. Only when the peer is a configured trusted proxy is the one
//! header that proxy writes (`X-Forwarded-For` or `Forwarded`, as configured) read, right to
//! left, and the first hop that is not itself a trusted proxy is the client. Anyone else can write
//! those headers; they change nothing. The other header is never read: a proxy passes on what the
//! client wrote in it.

use axum::http::{HeaderMap, header};
use hmac::{KeyInit, Mac};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv6Addr};

/// The header the trusted proxies write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ProxyHeader {
    #[default]
    #[value(name = "x-forwarded-for")]
    XForwardedFor,
    #[value(name = "forwarded")]
    Forwarded,
}

#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ProxyHeader,
}

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>, header: ProxyHeader) -> Self {
        Self { nets, header }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request that came from `peer`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops = match self.header {
            ProxyHeader::XForwardedFor => x_forwarded_for(headers),
            ProxyHeader::Forwarded => forwarded(headers),
        };
        for hop in hops.iter().rev() {
            match hop {
                // A hop we cannot read: everything left of it is unverifiable, so the request is
                // attributed to the last proxy that handed it on.
                None => return peer,
                Some(ip) if !self.trusts(*ip) => return *ip,
                Some(_) => {}
            }
        }
        // Every hop is a proxy of ours (or there are none): the left-most one is the origin.
        hops.first().copied().flatten().unwrap_or(peer)
    }
}

/// The hops of `X-Forwarded-For` (all such headers, in order).
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| parse_hop(hop.trim()))
        .collect()
}

/// The `for=` hops of `Forwarded` (all such headers, in order).
fn forwarded(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all(header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.trim().eq_ignore_ascii_case("for").then(|| parse_hop(value.trim().trim_matches('"')))
            })
        })
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse::<Ipv6Addr>().ok()).map(|ip| canonical(ip.into()));
    }
    hop.rsplit_once(':').and_then(|(ip, _)| ip.parse::<IpAddr>().ok()).map(canonical)
}

/// IPv4 addresses that arrive IPv4-mapped (`::ffff:192.0.2.1`) are IPv4 addresses.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The block a ban of `ip` covers: the address itself for IPv4, its `/prefix` for IPv6.
pub fn ban_block(ip: IpAddr, ipv6_prefix: u8) -> IpNet {
    match canonical(ip) {
        IpAddr::V4(v4) => ipnet::Ipv4Net::from(v4).into(),
        IpAddr::V6(v6) => ipnet::Ipv6Net::new_assert(v6, ipv6_prefix.min(128)).trunc().into(),
    }
}

/// HMAC-SHA256 of an address under the server's secret: stable on this server, useless elsewhere,
/// and not reversible without the secret. Moderators see this, not the address.
#[derive(Clone)]
pub struct IpHasher {
    key: [u8; 32],
}

impl IpHasher {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// 24 hex digits (96 bits): short enough to read, long enough never to collide.
    pub fn hash(&self, ip: IpAddr) -> String {
        let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(canonical(ip).to_string().as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..12])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn proxies_writing(header: ProxyHeader) -> TrustedProxies {
        TrustedProxies::new(vec!["10.0.0.0/8".parse().expect("net"), "::1/128".parse().expect("net")], header)
    }

    fn proxies() -> TrustedProxies {
        proxies_writing(ProxyHeader::XForwardedFor)
    }

    #[test]
    fn headers_from_an_untrusted_peer_change_nothing() {
        let peer: IpAddr = "198.51.100.9".parse().expect("ip");
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(proxies().client_ip(peer, &spoofed), peer);
        assert_eq!(TrustedProxies::default().client_ip(peer, &spoofed), peer);
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let proxy: IpAddr = "10.0.0.2".parse().expect("ip");
        // A client that forged a left-most hop does not get to choose its address.
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.5, 10.0.0.7")]);
        assert_eq!(proxies().client_ip(proxy, &chain), "203.0.113.5".parse::<IpAddr>().expect("ip"));
        let split = headers(&[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "203.0.113.5:51000")]);
        assert_eq!(proxies().client_ip(proxy, &split), "203.0.113.5".parse::<IpAddr>().expect("ip"));
        let rfc = headers(&[("forwarded", r#"for=6.6.6.6, for="[2001:db8::7]:4711";proto=https"#)]);
        let rfc_proxies = proxies_writing(ProxyHeader::Forwarded);
        assert_eq!(rfc_proxies.client_ip(proxy, &rfc), "2001:db8::7".parse::<IpAddr>().expect("ip"));
        assert_eq!(proxies().client_ip(proxy, &HeaderMap::new()), proxy, "no header: the proxy itself");
        let garbage = headers(&[("x-forwarded-for", "6.6.6.6, not-an-address")]);
        assert_eq!(proxies().client_ip(proxy, &garbage), proxy);
    }

    #[test]
    fn only_the_header_the_proxies_write_is_read() {
        let proxy: IpAddr = "10.0.0.2".parse().expect("ip");
        // The proxy writes `Forwarded` and passes on the client's own `X-Forwarded-For`.
        let both = headers(&[("x-forwarded-for", "198.51.100.77"), ("forwarded", "for=203.0.113.5")]);
        let client: IpAddr = "203.0.113.5".parse().expect("ip");
        assert_eq!(proxies_writing(ProxyHeader::Forwarded).client_ip(proxy, &both), client);
        // And the other way round.
        let both = headers(&[("x-forwarded-for", "203.0.113.5"), ("forwarded", "for=198.51.100.77")]);
        assert_eq!(proxies().client_ip(proxy, &both), client);
    }

    #[test]
    fn ipv6_bans_cover_the_block_and_mapped_addresses_are_ipv4() {
        let ip: IpAddr = "2001:db8:1:2:aaaa::9".parse().expect("ip");
        assert_eq!(ban_block(ip, 64).to_string(), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:192.0.2.4".parse().expect("ip");
        assert_eq!(ban_block(mapped, 64).to_string(), "192.0.2.4/32");
    }

    #[test]
    fn hashes_are_keyed_and_stable() {
        let a = IpHasher::new([1; 32]);
        let b = IpHasher::new([2; 32]);
        let ip: IpAddr = "192.0.2.4".parse().expect("ip");
        assert_eq!(a.hash(ip), a.hash(ip));
        assert_eq!(a.hash(ip).len(), 24);
        assert_ne!(a.hash(ip), b.hash(ip));
        assert_eq!(a.hash(ip), a.hash("::ffff:192.0.2.4".parse().expect("ip")));
    }
}
