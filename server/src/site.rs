//! The server's side of the app's server functions (`app::api::Backend`).

use crate::{hub::Hub, limits::IpLimits};
use app::{
    api::{ApiError, Backend, NewRoom, RoomPreview},
    protocol::{ErrorCode, RoomSummary},
    rules,
};
use std::{net::IpAddr, sync::Arc};

pub struct Site {
    pub hub: Arc<Hub>,
    pub ip_limits: Arc<IpLimits>,
    pub max_room_limit: u32,
}

impl Backend for Site {
    fn rooms(&self) -> Vec<RoomSummary> {
        self.hub.listed_rooms()
    }

    fn preview(&self, slug: &str) -> Option<RoomPreview> {
        self.hub.preview(slug)
    }

    fn create_room(&self, creator: IpAddr, room: NewRoom) -> Result<RoomSummary, ApiError> {
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
        self.hub
            .create_room(&room.name, room.limit, room.one_way, room.listed)
            .map_err(|error| ApiError::new(error.code(), error.to_string()))
    }
}
