//! The server's side of the app's server functions (`app::api::Backend`).

use crate::{hub::Hub, limits::IpLimits, moderation::Moderation};
use app::{
    api::{ApiError, Backend, NewRoom, RoomPreview},
    protocol::{ConnectionView, ErrorCode, ModAction, RoomSummary},
    rules,
};
use axum::http::HeaderMap;
use std::{net::IpAddr, sync::Arc};

pub struct Site {
    pub hub: Arc<Hub>,
    pub ip_limits: Arc<IpLimits>,
    pub moderation: Arc<Moderation>,
    pub max_room_limit: u32,
}

impl Site {
    fn moderator(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.moderation.auth.is_moderator(headers) {
            Ok(())
        } else {
            Err(ApiError::new(ErrorCode::PermissionDenied, "Only moderators can do that: sign in at /mod."))
        }
    }
}

#[async_trait::async_trait]
impl Backend for Site {
    fn rooms(&self) -> Vec<RoomSummary> {
        self.hub.listed_rooms()
    }

    fn preview(&self, slug: &str) -> Option<RoomPreview> {
        self.hub.preview(slug)
    }

    async fn create_room(&self, peer: IpAddr, headers: &HeaderMap, room: NewRoom) -> Result<RoomSummary, ApiError> {
        let creator = self.moderation.proxies.client_ip(peer, headers);
        if let Some(ban) = self.moderation.ban_for(creator) {
            return Err(ApiError::new(ErrorCode::Banned, app::text::ban_sentence(&ban.reason, ban.expires_at)));
        }
        // Only a well-formed request spends one of the creator's room tokens.
        if let Err(error) = rules::room_name(&room.name) {
            return Err(ApiError::new(ErrorCode::RoomNameInvalid, format!("That room name can't be used: {error}.")));
        }
        if !(rules::ROOM_LIMIT_MIN..=self.max_room_limit).contains(&room.limit) {
            return Err(ApiError::new(
                ErrorCode::LimitInvalid,
                format!("The participant limit must be a whole number from 2 to {}.", self.max_room_limit),
            ));
        }
        if let Err(retry) = self.ip_limits.room_creation.take(creator, 1) {
            let seconds = retry.0.as_secs().max(1);
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                format!("You are creating rooms too quickly. Try again in {seconds} seconds."),
            ));
        }
        let created = self.hub.create_room(room).map_err(|error| ApiError::new(error.code(), error.to_string()))?;
        // The room works even if this fails; it would just not survive a restart.
        if let Err(error) = self.moderation.store.save_room(&created.record()).await {
            tracing::error!(%error, room = %created.slug, "cannot save the new room's settings");
        }
        Ok(created.summary())
    }

    async fn moderate(&self, headers: &HeaderMap, action: ModAction) -> Result<String, ApiError> {
        self.moderator(headers)?;
        let done =
            self.moderation.command(&self.hub, action).await.map_err(|(code, message)| ApiError::new(code, message))?;
        self.moderation.refresh_consoles(&self.hub).await;
        Ok(done)
    }

    async fn search_log(
        &self,
        headers: &HeaderMap,
        text: String,
        reveal: bool,
    ) -> Result<Vec<ConnectionView>, ApiError> {
        self.moderator(headers)?;
        self.moderation.search(&text, reveal).await.map_err(|(code, message)| ApiError::new(code, message))
    }
}
