//! pam_cage.so
