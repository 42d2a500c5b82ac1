//! Active bans, in memory for the check every upgrade makes; the store keeps them across restarts.

use crate::store::{Ban, BanTarget};
use std::{
    net::IpAddr,
    sync::{PoisonError, RwLock},
};

#[derive(Default)]
pub struct Bans {
    active: RwLock<Vec<Ban>>,
}

impl Bans {
    pub fn new(active: Vec<Ban>) -> Self {
        Self { active: RwLock::new(active) }
    }

    /// The ban that applies to `ip` (whose keyed hash is `hash`) at `now`, if any.
    pub fn find(&self, ip: IpAddr, hash: &str, now: i64) -> Option<Ban> {
        let ip = crate::peer::canonical(ip);
        let active = self.active.read().unwrap_or_else(PoisonError::into_inner);
        active
            .iter()
            .filter(|ban| ban.expires_at.is_none_or(|until| until > now))
            .find(|ban| covers(&ban.target, ip, hash))
            .cloned()
    }

    /// Adds a ban; false if it was already there (a node hears of its own bans too).
    pub fn insert(&self, ban: Ban) -> bool {
        let mut active = self.active.write().unwrap_or_else(PoisonError::into_inner);
        if active.iter().any(|known| known.id == ban.id) {
            return false;
        }
        active.push(ban);
        true
    }

    /// Takes the store's list as the truth (after missing what the cluster said for a while);
    /// the bans this node did not know of. A ban newer than any in the list (ids only grow) was
    /// added while the list was being read, and stays.
    pub fn replace(&self, mut bans: Vec<Ban>) -> Vec<Ban> {
        let mut active = self.active.write().unwrap_or_else(PoisonError::into_inner);
        let newest_read = bans.iter().map(|ban| ban.id).max().unwrap_or(0);
        let new = bans.iter().filter(|ban| !active.iter().any(|known| known.id == ban.id)).cloned().collect();
        bans.extend(active.drain(..).filter(|ban| ban.id > newest_read));
        *active = bans;
        new
    }

    pub fn remove(&self, id: i64) -> bool {
        let mut active = self.active.write().unwrap_or_else(PoisonError::into_inner);
        let before = active.len();
        active.retain(|ban| ban.id != id);
        active.len() != before
    }

    /// Bans still in force at `now`, expired ones forgotten.
    pub fn list(&self, now: i64) -> Vec<Ban> {
        let mut active = self.active.write().unwrap_or_else(PoisonError::into_inner);
        active.retain(|ban| ban.expires_at.is_none_or(|until| until > now));
        active.clone()
    }
}

pub fn covers(target: &BanTarget, ip: IpAddr, hash: &str) -> bool {
    match target {
        BanTarget::Ip(banned) => crate::peer::canonical(*banned) == ip,
        BanTarget::Net(net) => net.contains(&ip),
        BanTarget::Hash(banned) => !hash.is_empty() && banned == hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(id: i64, target: BanTarget, expires_at: Option<i64>) -> Ban {
        Ban { id, target, reason: "r".into(), created_at: 0, expires_at }
    }

    #[test]
    fn a_ban_covers_its_address_block_or_hash_until_it_expires() {
        let bans = Bans::new(vec![
            ban(1, BanTarget::Ip("192.0.2.1".parse().expect("ip")), None),
            ban(2, BanTarget::Net("2001:db8:1:2::/64".parse().expect("net")), Some(100)),
            ban(3, BanTarget::Hash("abc".into()), None),
        ]);
        assert_eq!(bans.find("::ffff:192.0.2.1".parse().expect("ip"), "", 0).map(|b| b.id), Some(1));
        assert_eq!(bans.find("2001:db8:1:2:ffff::1".parse().expect("ip"), "", 50).map(|b| b.id), Some(2));
        assert_eq!(bans.find("2001:db8:1:2:ffff::1".parse().expect("ip"), "", 150), None, "expired");
        assert_eq!(bans.find("2001:db8:1:3::1".parse().expect("ip"), "", 50), None, "another /64");
        assert_eq!(bans.find("198.51.100.1".parse().expect("ip"), "abc", 0).map(|b| b.id), Some(3));
        assert!(bans.remove(3));
        assert_eq!(bans.find("198.51.100.1".parse().expect("ip"), "abc", 0), None, "lifted");
        assert_eq!(bans.list(150).len(), 1);
    }

    #[test]
    fn the_stores_list_replaces_the_bans_but_not_one_added_while_it_was_read() {
        let bans = Bans::new(vec![
            ban(1, BanTarget::Hash("lifted elsewhere".into()), None),
            ban(2, BanTarget::Hash("kept".into()), None),
            ban(9, BanTarget::Hash("added while reading".into()), None),
        ]);
        let read = vec![ban(2, BanTarget::Hash("kept".into()), None), ban(5, BanTarget::Hash("missed".into()), None)];
        let new = bans.replace(read);
        assert_eq!(new.iter().map(|b| b.id).collect::<Vec<_>>(), [5], "only the one this node had not heard of");
        let mut ids: Vec<i64> = bans.list(0).iter().map(|b| b.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, [2, 5, 9]);
    }
}
