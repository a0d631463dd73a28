//! Handshakes and bad input against a real platform process (written by a helper).
