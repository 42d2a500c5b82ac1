//! Why the hub refused a request: a code for programs and a sentence for people.

use app::{
    protocol::ErrorCode,
    rules::{MessageError, NameError},
};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    #[error("There is no room here. It may have expired after everyone left.")]
    RoomNotFound,
    #[error("This room is full ({limit}/{limit}).")]
    RoomFull { limit: u32 },
    #[error("That room name can't be used: {0}.")]
    RoomNameInvalid(NameError),
    #[error("A room with that name (or one that looks just like it) already exists.")]
    RoomNameTaken,
    #[error("The participant limit must be a whole number from 2 to {max}.")]
    LimitInvalid { max: u32 },
    #[error("There are too many rooms right now. Join an existing one, or try again later.")]
    TooManyRooms,
    #[error("That nickname can't be used: {0}.")]
    NicknameInvalid(NameError),
    #[error("That nickname is reserved.")]
    NicknameReserved,
    #[error("That nickname is taken in this room.")]
    NicknameTaken,
    #[error("You are not in a room: join one first.")]
    NotJoined,
    #[error("The session id must be 16 to 128 letters, digits, '-' or '_'.")]
    SessionInvalid,
    #[error("This room is locked: nobody new can join right now.")]
    RoomLocked,
    #[error("This room is in slow mode: one message every {seconds} seconds.")]
    SlowMode { retry_after: std::time::Duration, seconds: u64 },
    #[error("The message reference must be at most 64 characters.")]
    ClientRefInvalid,
    #[error("{0}")]
    Message(MessageError),
}

impl HubError {
    pub fn nickname(error: NameError) -> Self {
        match error {
            NameError::Reserved => Self::NicknameReserved,
            other => Self::NicknameInvalid(other),
        }
    }

    /// When trying again makes sense, after how long.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::SlowMode { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::RoomNotFound => ErrorCode::RoomNotFound,
            Self::RoomFull { .. } => ErrorCode::RoomFull,
            Self::RoomNameInvalid(_) => ErrorCode::RoomNameInvalid,
            Self::RoomNameTaken => ErrorCode::RoomNameTaken,
            Self::LimitInvalid { .. } => ErrorCode::LimitInvalid,
            Self::TooManyRooms => ErrorCode::Unavailable,
            Self::NicknameInvalid(_) => ErrorCode::NicknameInvalid,
            Self::NicknameReserved => ErrorCode::NicknameReserved,
            Self::NicknameTaken => ErrorCode::NicknameTaken,
            Self::NotJoined => ErrorCode::NotJoined,
            Self::RoomLocked => ErrorCode::RoomLocked,
            Self::SlowMode { .. } => ErrorCode::SlowMode,
            Self::SessionInvalid => ErrorCode::SessionInvalid,
            Self::ClientRefInvalid => ErrorCode::BadRequest,
            Self::Message(MessageError::Empty) => ErrorCode::MessageEmpty,
            Self::Message(MessageError::TooLong { .. }) => ErrorCode::TooLong,
        }
    }
}
