//! `join` and `send_message` in cluster mode: the same admission as in one process (the
//! posting policy, then the room), but the room's decision is Redis's (`crate::cluster::rooms`),
//! so the answer waits for it — never longer than the cluster's call deadline, after which the
//! request is refused with the retryable `unavailable` and nothing was done. The per-address
//! join and message rates hold across the cluster too: the scripts count them in Redis.

use crate::{
    cluster::SharedRate,
    error::Refusal,
    hub::JoinRequest,
    policy::{Admission, Denied},
    ws::session::{Flow, Session},
};
use app::protocol::Resume;
use tokio::time::Instant;

pub(super) async fn join(session: &mut Session, room: &str, nickname: &str, tab: &str, resume: Option<Resume>) -> Flow {
    let Some(rooms) = session.parts.hub.cluster().cloned() else { return Flow::Continue };
    if session.membership.is_some() {
        return session.refuse_and_strike(&Refusal::already_joined(), None);
    }
    if let Err(refusal) = session.parts.policy.join(&session.sender) {
        session.refuse(&refusal, None);
        return Flow::Continue;
    }
    let request = JoinRequest {
        bridge: false,
        nickname,
        session: tab,
        resume: resume.as_ref(),
        ip: session.visitor.ip,
        ip_hash: session.visitor.ip_hash.clone(),
    };
    let rate = shared_rate(session, session.parts.config.join_burst_per_ip, session.parts.config.join_interval_per_ip);
    match rooms.join(&session.parts.hub, room, &session.handle, request, &rate).await {
        Ok(membership) => {
            session.parts.moderation.log.joined(session.handle.id, &membership.room.slug, nickname);
            session.membership = Some(membership);
        }
        Err(refusal) => session.refuse(&refusal, None),
    }
    Flow::Continue
}

pub(super) async fn send(session: &mut Session, text: &str, client_ref: Option<String>) -> Flow {
    let Some(rooms) = session.parts.hub.cluster().cloned() else { return Flow::Continue };
    let Some(membership) = &session.membership else {
        return session.refuse_and_strike(&Refusal::not_joined(), client_ref);
    };
    let admitted =
        session.parts.policy.admit(&mut session.sender, membership, text, client_ref.as_deref(), Instant::now());
    let result = match admitted {
        Ok(Admission::Resent(accepted)) => Ok(accepted),
        Ok(Admission::New(admitted)) => {
            let fingerprint = admitted.fingerprint;
            let rate = shared_rate(
                session,
                session.parts.config.message_burst_per_ip,
                session.parts.config.message_interval_per_ip,
            );
            let posted = rooms.post(membership, admitted.text, client_ref.clone(), None, &rate).await;
            if posted.is_ok() {
                session.parts.policy.posted(&session.sender, fingerprint);
            }
            posted.map_err(Denied::Refused)
        }
        Err(denied) => Err(denied),
    };
    super::send::answer(session, result, client_ref)
}

/// This connection's address (its /64 for IPv6) as the cluster counts it: by its keyed hash.
fn shared_rate(session: &Session, burst: u32, interval: std::time::Duration) -> SharedRate {
    SharedRate::of(session.sender.key(), &session.visitor.ip_hash, &session.parts.moderation.hasher, burst, interval)
}
