//! libpam's application calls (pam_appl.h) and the conversation trampoline. The trampoline runs
//! the Rust conversation inside `catch_unwind`: a panic becomes PAM_CONV_ERR, never an unwind
//! through libpam's C frames.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use crate::Conversation;

const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;
const PAM_BUF_ERR: c_int = crate::PAM_BUF_ERR;
const PAM_USER: c_int = 2;
const PAM_RHOST: c_int = 4;
const PAM_CONV_ERR: c_int = crate::PAM_CONV_ERR;
const PAM_SUCCESS: c_int = crate::PAM_SUCCESS;

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = unsafe extern "C" fn(
    c_int,
    *mut *const PamMessage,
    *mut *mut PamResponse,
    *mut c_void,
) -> c_int;

#[repr(C)]
struct PamConv {
    conv: ConvFn,
    appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_start(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        pamh: *mut *mut c_void,
    ) -> c_int;
    fn pam_set_item(pamh: *mut c_void, item: c_int, value: *const c_void) -> c_int;
    fn pam_get_item(pamh: *const c_void, item: c_int, value: *mut *const c_void) -> c_int;
    fn pam_authenticate(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_acct_mgmt(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
    fn pam_strerror(pamh: *mut c_void, errnum: c_int) -> *const c_char;
}

/// The conversation as libpam's `appdata_ptr` points to it.
struct ConvState<'c> {
    conversation: Box<dyn Conversation + 'c>,
}

/// Frees the first `count` answers and the array itself (on an error part-way through).
///
/// # Safety
/// `replies` must come from calloc with at least `count` entries whose `resp` are null or malloc'ed.
unsafe fn free_replies(replies: *mut PamResponse, count: usize) {
    // SAFETY: `count` initialized entries by the function's contract, and nobody else uses them.
    let entries = unsafe { std::slice::from_raw_parts_mut(replies, count) };
    for entry in entries {
        let resp = entry.resp;
        if !resp.is_null() {
            // SAFETY: resp is a NUL-terminated malloc'ed copy of an answer.
            let len = unsafe { libc::strlen(resp) };
            // SAFETY: resp has `len` writable bytes before its NUL; the answer is wiped before free.
            unsafe { ptr::write_bytes(resp, 0, len) };
            // SAFETY: resp came from malloc and nothing else holds it.
            unsafe { libc::free(resp.cast::<c_void>()) };
        }
    }
    // SAFETY: the array came from calloc.
    unsafe { libc::free(replies.cast::<c_void>()) };
}

unsafe extern "C" fn trampoline(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    if num_msg <= 0 || num_msg > 32 || msg.is_null() || resp.is_null() || appdata.is_null() {
        return PAM_CONV_ERR;
    }
    let Ok(count) = usize::try_from(num_msg) else {
        return PAM_CONV_ERR;
    };
    // SAFETY: a zeroed array of `count` responses; libpam takes it and frees it with free().
    let replies = unsafe { libc::calloc(count, size_of::<PamResponse>()) }.cast::<PamResponse>();
    if replies.is_null() {
        return PAM_BUF_ERR;
    }
    // SAFETY: appdata is the ConvState that `Transaction` keeps alive and does not otherwise touch
    // while libpam runs.
    let state = unsafe { &mut *appdata.cast::<ConvState<'_>>() };
    // SAFETY: Linux-PAM passes an array of `num_msg` message pointers.
    let messages = unsafe { std::slice::from_raw_parts(msg, count) };
    let answered = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `count` zeroed entries from calloc above, used by nobody else until returned.
        let entries = unsafe { std::slice::from_raw_parts_mut(replies, count) };
        for i in 0..count {
            // SAFETY: each of Linux-PAM's `num_msg` pointers is to a valid message that outlives
            // this call.
            let message = unsafe { &*messages[i] };
            let text = if message.msg.is_null() {
                String::new()
            } else {
                // SAFETY: non-null message text is a NUL-terminated string owned by libpam.
                unsafe { CStr::from_ptr(message.msg) }
                    .to_string_lossy()
                    .into_owned()
            };
            match message.msg_style {
                PAM_PROMPT_ECHO_OFF | PAM_PROMPT_ECHO_ON => {
                    let echo = message.msg_style == PAM_PROMPT_ECHO_ON;
                    let Some(answer) = state.conversation.prompt(&text, echo) else {
                        return Err(i);
                    };
                    let end = answer.iter().position(|&b| b == 0).unwrap_or(answer.len());
                    // SAFETY: calloc of end+1 zeroed bytes (initialized, so a slice may cover
                    // them), filled below; the last stays the NUL.
                    let copy = unsafe { libc::calloc(end + 1, 1) }.cast::<u8>();
                    if copy.is_null() {
                        return Err(i);
                    }
                    // SAFETY: copy has end+1 bytes, just allocated and owned by nobody else.
                    let target = unsafe { std::slice::from_raw_parts_mut(copy, end + 1) };
                    target[..end].copy_from_slice(&answer[..end]);
                    entries[i].resp = copy.cast::<c_char>();
                }
                PAM_ERROR_MSG => state.conversation.show(&text, true),
                PAM_TEXT_INFO => state.conversation.show(&text, false),
                _ => return Err(i),
            }
        }
        Ok(())
    }));
    if let Ok(Ok(())) = answered {
        // SAFETY: resp is libpam's out-pointer.
        unsafe { *resp = replies };
        PAM_SUCCESS
    } else {
        // SAFETY: replies came from calloc with `count` entries.
        unsafe { free_replies(replies, count) };
        PAM_CONV_ERR
    }
}

/// One PAM transaction, ended (`pam_end`) when dropped.
pub struct Transaction<'c> {
    pamh: *mut c_void,
    last: c_int,
    // Boxed so its address, given to libpam, stays put.
    _state: Box<ConvState<'c>>,
    _conv: Box<PamConv>,
}

impl<'c> Transaction<'c> {
    /// `pam_start(service, user)`. The error is libpam's code.
    pub fn start(
        service: &CStr,
        user: &CStr,
        conversation: Box<dyn Conversation + 'c>,
    ) -> Result<Transaction<'c>, i32> {
        let mut state = Box::new(ConvState { conversation });
        let conv = Box::new(PamConv {
            conv: trampoline,
            appdata_ptr: (&raw mut *state).cast::<c_void>(),
        });
        let mut pamh = ptr::null_mut();
        // SAFETY: valid C strings, a live conversation struct, and an out-pointer.
        let rc = unsafe {
            pam_start(
                service.as_ptr(),
                user.as_ptr(),
                &raw const *conv,
                &raw mut pamh,
            )
        };
        if rc != PAM_SUCCESS || pamh.is_null() {
            return Err(rc);
        }
        Ok(Transaction {
            pamh,
            last: PAM_SUCCESS,
            _state: state,
            _conv: conv,
        })
    }

    /// Sets PAM_RHOST, as a network service does for its client's address.
    pub fn set_rhost(&mut self, rhost: &str) -> i32 {
        let Ok(rhost) = CString::new(rhost) else {
            return PAM_BUF_ERR;
        };
        // SAFETY: pamh is live; libpam copies the string.
        unsafe { pam_set_item(self.pamh, PAM_RHOST, rhost.as_ptr().cast::<c_void>()) }
    }

    /// PAM_USER as the modules left it (a module may map the name it was given to another).
    pub fn user(&self) -> Option<String> {
        let mut value: *const c_void = ptr::null();
        // SAFETY: pamh is live; libpam stores a pointer to its own copy in `value`.
        let rc = unsafe { pam_get_item(self.pamh, PAM_USER, &raw mut value) };
        if rc != PAM_SUCCESS || value.is_null() {
            return None;
        }
        // SAFETY: PAM_USER is a NUL-terminated string owned by libpam, alive until the next
        // pam_set_item or pam_end; it is copied here at once.
        let user = unsafe { CStr::from_ptr(value.cast::<c_char>()) };
        user.to_str().ok().map(str::to_owned)
    }

    pub fn authenticate(&mut self, flags: i32) -> i32 {
        // SAFETY: pamh is live.
        self.last = unsafe { pam_authenticate(self.pamh, flags) };
        self.last
    }

    pub fn acct_mgmt(&mut self, flags: i32) -> i32 {
        // SAFETY: pamh is live.
        self.last = unsafe { pam_acct_mgmt(self.pamh, flags) };
        self.last
    }

    /// libpam's text for a code.
    pub fn describe(&self, code: i32) -> String {
        // SAFETY: pamh is live; pam_strerror returns a static string or null.
        let text = unsafe { pam_strerror(self.pamh, code) };
        if text.is_null() {
            return format!("PAM error {code}");
        }
        // SAFETY: non-null NUL-terminated static string.
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        // SAFETY: pamh is live and ended exactly once, here.
        unsafe { pam_end(self.pamh, self.last) };
    }
}
