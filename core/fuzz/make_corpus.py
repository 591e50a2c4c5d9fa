#!/usr/bin/env python3
"""Writes the committed seed corpora of core/fuzz/ (corpus/<target>/).

    python3 core/fuzz/make_corpus.py

Each seed is a small hand-made input in the layout its target reads (see the
comment at the top of each fuzz_*.c), named after what it exercises, so a
person can tell what the corpus covers. Rerunning rewrites the same files;
the fuzzers' own discoveries stay in build-fuzz/corpus-work/, never here.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- fuzz_ws_frame: [chunk][max size][flags] + wire bytes -----------------

WHOLE = 255  # chunk byte: the whole input in one call
F_RSV1, F_CLIENT = 1, 2
STOP_ALWAYS, STOP_DATA, STOP_THIRD = 1 << 2, 2 << 2, 3 << 2

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0, 1, 2, 8, 9, 10


def frame(op, payload=b"", fin=True, rsv1=False, key=b"\x37\xfa\x21\x3d", length=None, form=None):
    """One frame. key=None writes it unmasked (server to client).
    length overrides the announced length; form forces 7/16/64 bits."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | op
    m = 0x80 if key is not None else 0
    if form is None:
        form = 7 if n < 126 else 16 if n <= 0xFFFF else 64
    if form == 7:
        hdr = bytes([b0, m | n])
    elif form == 16:
        hdr = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if key is None:
        return hdr + payload
    masked = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
    return hdr + key + masked


def sframe(op, payload=b"", **kw):
    """Server to client: unmasked."""
    return frame(op, payload, key=None, **kw)


def close_payload(code, reason=b""):
    return struct.pack(">H", code) + reason


def ws(chunk, max_size, flags, wire):
    return bytes([chunk, max_size, flags]) + wire


EMOJI = "\U0001F600".encode()  # F0 9F 98 80

WS_FRAME = {
    "text_hello_whole": ws(WHOLE, 0, 0, frame(TEXT, b"Hello")),
    "text_hello_1byte": ws(0, 0, 0, frame(TEXT, b"Hello")),
    "fragments_ping_between": ws(
        0, 0, 0,
        frame(TEXT, b"Hel", fin=False) + frame(PING, b"p") + frame(CONT, b"lo ", fin=False)
        + frame(PONG) + frame(CONT, "w\u00f6rld".encode())),
    "emoji_split_across_fragments": ws(
        2, 0, 0, frame(TEXT, EMOJI[:1], fin=False) + frame(CONT, EMOJI[1:3], fin=False)
        + frame(CONT, EMOJI[3:])),
    "binary_len126_16bit": ws(6, 0, 0, frame(BINARY, bytes(range(126)))),
    "binary_len200_16bit": ws(12, 0, 0, frame(BINARY, bytes(i & 0xFF for i in range(200)))),
    "binary_64bit_form_small": ws(12, 0, 0, frame(BINARY, b"abcdef", form=64)),
    "binary_16bit_form_small": ws(3, 0, 0, frame(BINARY, b"xy", form=16)),
    "binary_huge_announced_truncated": ws(WHOLE, 0, 0, frame(BINARY, b"zz", length=1 << 40)),
    "empty_messages": ws(0, 0, 0, frame(TEXT) + frame(BINARY) + frame(TEXT, fin=False) + frame(CONT)),
    "ping_125_pong_empty": ws(40, 0, 0, frame(PING, b"P" * 125) + frame(PONG)),
    "close_1000_reason_then_junk": ws(
        WHOLE, 0, 0, frame(CLOSE, close_payload(1000, b"bye")) + b"\xff\xff\xff"),
    "close_empty": ws(0, 0, 0, frame(CLOSE)),
    "close_4999_utf8_reason": ws(5, 0, 0, frame(CLOSE, close_payload(4999, "d\u00e9j\u00e0".encode()))),
    "close_code_1005_invalid": ws(WHOLE, 0, 0, frame(CLOSE, close_payload(1005))),
    "close_one_byte": ws(WHOLE, 0, 0, frame(CLOSE, b"\x03")),
    "close_reason_bad_utf8": ws(WHOLE, 0, 0, frame(CLOSE, close_payload(1000, b"\xc3("))),
    "text_surrogate_1007": ws(1, 0, 0, frame(TEXT, b"ok\xed\xa0\x80")),
    "text_overlong_1007": ws(WHOLE, 0, 0, frame(TEXT, b"\xc0\xaf")),
    "text_truncated_at_fin_1007": ws(0, 0, 0, frame(TEXT, b"a\xe2\x82")),
    "text_bad_utf8_late_in_long_payload": ws(
        20, 0, 0, frame(TEXT, b"abcdefghijklmnopqrstuvwxyz0123456789" * 4 + b"\xff")),
    "too_big_single_frame_1009": ws(WHOLE, 10, 0, frame(BINARY, b"0123456789A")),
    "too_big_by_continuation_1009": ws(
        1, 8, 0, frame(BINARY, b"12345", fin=False) + frame(CONT, b"6789")),
    "limit_exact_ok": ws(3, 8, 0, frame(TEXT, b"1234", fin=False) + frame(CONT, b"5678")),
    "too_big_64bit_header_1009": ws(WHOLE, 200, 0, frame(BINARY, b"", length=70000)),
    "rsv1_allowed": ws(4, 0, F_RSV1, frame(TEXT, b"\xf2\x48\xcd", rsv1=True, fin=False)
                       + frame(CONT, b"\x00\xff")),
    "rsv1_not_allowed": ws(WHOLE, 0, 0, frame(TEXT, b"x", rsv1=True)),
    "rsv1_on_continuation": ws(WHOLE, 0, F_RSV1, frame(TEXT, b"x", fin=False)
                               + frame(CONT, b"y", rsv1=True)),
    "rsv1_on_ping": ws(WHOLE, 0, F_RSV1, frame(PING, b"", rsv1=True)),
    "rsv2_rsv3": ws(WHOLE, 0, 0, bytes([0xB1, 0x80]) + b"\0\0\0\0"),
    "reserved_opcode_3": ws(WHOLE, 0, 0, frame(3, b"?")),
    "reserved_opcode_b": ws(WHOLE, 0, 0, frame(0xB)),
    "fragmented_ping": ws(WHOLE, 0, 0, frame(PING, b"x", fin=False)),
    "ping_126_16bit": ws(WHOLE, 0, 0, frame(PING, b"x" * 126)),
    "unmasked_to_server": ws(WHOLE, 0, 0, sframe(TEXT, b"hi")),
    "continuation_without_message": ws(WHOLE, 0, 0, frame(CONT, b"x")),
    "new_message_inside_message": ws(WHOLE, 0, 0, frame(TEXT, b"a", fin=False) + frame(BINARY, b"b")),
    "64bit_length_top_bit": ws(WHOLE, 0, 0, bytes([0x82, 0xFF]) + b"\x80" + b"\0" * 7 + b"\0\0\0\0"),
    "client_role_text_ping_close": ws(
        1, 0, F_CLIENT, sframe(TEXT, "h\u00e9".encode()) + sframe(PING, b"1")
        + sframe(CLOSE, close_payload(1001))),
    "client_role_masked_frame": ws(WHOLE, 0, F_CLIENT, frame(BINARY, b"m")),
    "stop_always_fragments": ws(
        2, 0, STOP_ALWAYS, frame(TEXT, b"ab", fin=False) + frame(PING) + frame(CONT, b"cd")
        + frame(CLOSE, close_payload(1000))),
    "stop_data_binary": ws(3, 0, STOP_DATA, frame(BINARY, b"0123456789") + frame(BINARY)),
    "stop_third_mixed": ws(
        5, 16, STOP_THIRD | F_RSV1, frame(TEXT, b"abc", rsv1=True, fin=False) + frame(PONG, b"q")
        + frame(CONT, b"def") + frame(TEXT, b"ghi")),
}

# ---- fuzz_utf8: [chunk] + text --------------------------------------------

REASON_EDGE = b"r" * 121 + "\u00e9\u20ac".encode()  # a code point straddles byte 123

UTF8 = {
    "ascii_long": bytes([7]) + b"The quick brown fox jumps over the lazy dog. 0123456789",
    "mixed_whole": bytes([WHOLE]) + "a\u00e9\u20ac\U0001F600z".encode(),
    "mixed_1byte": bytes([0]) + "\u00e9\u20ac\U0001F600".encode(),
    "boundaries": bytes([3]) + "".join(map(chr, [0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFD, 0xFFFF,
                                                0x10000, 0x10FFFF])).encode(),
    "overlong_c0": bytes([WHOLE]) + b"ab\xc0\x80",
    "overlong_c1": bytes([WHOLE]) + b"\xc1\xbf",
    "overlong_e0": bytes([1]) + b"\xe0\x80\xaf",
    "overlong_f0": bytes([1]) + b"\xf0\x8f\xbf\xbf",
    "surrogate_high": bytes([WHOLE]) + b"\xed\xa0\x80",
    "surrogate_low": bytes([2]) + b"\xed\xbf\xbf",
    "above_10ffff": bytes([WHOLE]) + b"\xf4\x90\x80\x80",
    "lead_f5": bytes([WHOLE]) + b"\xf5\x80\x80\x80",
    "lead_ff": bytes([WHOLE]) + b"\xff",
    "stray_continuation": bytes([WHOLE]) + b"abc\x80def",
    "truncated_2": bytes([WHOLE]) + b"\xc3",
    "truncated_4": bytes([1]) + b"\xf0\x9f\x98",
    "ascii_then_bad_after_8": bytes([WHOLE]) + b"abcdefghijklmnop\xe2\x28\xa1",
    "reason_cut_boundary": bytes([WHOLE]) + REASON_EDGE,
    "reason_long_emoji": bytes([9]) + "\U0001F600".encode() * 40,
}

# ---- fuzz_handshake: method \n version \n Name:value ... -------------------

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def req(method="GET", version="1.1", headers=None):
    if headers is None:
        headers = [("Host", " example.com"), ("Upgrade", " websocket"), ("Connection", " Upgrade"),
                   ("Sec-WebSocket-Key", " " + KEY), ("Sec-WebSocket-Version", " 13")]
    lines = [method, version] + [n + ":" + v for n, v in headers]
    return ("\r\n".join(lines) + "\r\n").encode()


def base(**changes):
    h = {"Host": " example.com", "Upgrade": " websocket", "Connection": " Upgrade",
         "Sec-WebSocket-Key": " " + KEY, "Sec-WebSocket-Version": " 13"}
    for k, v in changes.items():
        k = k.replace("_", "-")
        if v is None:
            h.pop(k, None)
        else:
            h[k] = v
    return list(h.items())


HANDSHAKE = {
    "valid": req(),
    "valid_lowercase_tokens_tabs": req(headers=[
        ("host", "x"), ("upgrade", "\tWebSocket\t"), ("connection", " keep-alive,  upgrade "),
        ("sec-websocket-key", KEY), ("sec-websocket-version", "13 "), ("Origin", " http://x")]),
    "valid_http2": req(version="2.0"),
    "valid_upgrade_list": req(headers=base(Upgrade=" h2c, websocket", Connection=" close,Upgrade")),
    "post_405": req(method="POST"),
    "get_lowercase": req(method="get"),
    "http10_400": req(version="1.0"),
    "no_host_400": req(headers=base(Host=None)),
    "two_hosts_400": req(headers=base() + [("Host", " b")]),
    "no_upgrade_426": req(headers=base(Upgrade=None)),
    "upgrade_not_websocket_400": req(headers=base(Upgrade=" h2c")),
    "connection_no_upgrade_400": req(headers=base(Connection=" keep-alive")),
    "version_12_426": req(headers=base(Sec_WebSocket_Version=" 12")),
    "version_missing_400": req(headers=base(Sec_WebSocket_Version=None)),
    "version_twice_400": req(headers=base() + [("Sec-WebSocket-Version", " 13")]),
    "key_missing_400": req(headers=base(Sec_WebSocket_Key=None)),
    "key_twice_400": req(headers=base() + [("Sec-WebSocket-Key", " " + KEY)]),
    "key_23_chars": req(headers=base(Sec_WebSocket_Key=" " + KEY[1:])),
    "key_noncanonical_last_char": req(headers=base(Sec_WebSocket_Key=" dGhlIHNhbXBsZSBub25jZR==")),
    "key_no_padding": req(headers=base(Sec_WebSocket_Key=" dGhlIHNhbXBsZSBub25jZQAA")),
    "empty_values": req(headers=[("Host", ""), ("Upgrade", ""), ("Connection", ""),
                                 ("Sec-WebSocket-Key", ""), ("Sec-WebSocket-Version", "")]),
    "name_without_colon": req(headers=[("Host", "a")]) + b"Upgrade\r\n",
}


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print(f"{target}: {len(seeds)} seeds in {os.path.relpath(d)}")


if __name__ == "__main__":
    write("fuzz_ws_frame", WS_FRAME)
    write("fuzz_utf8", UTF8)
    write("fuzz_handshake", HANDSHAKE)
