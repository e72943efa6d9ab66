pub mod accounts;
pub mod auth;
pub mod system;
pub mod transfers;
