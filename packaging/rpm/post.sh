# apppw %post: create or repair /var/lib/apppw (root:apppw 2770) and the store.
/usr/bin/apppw-ctl init >/dev/null || :
