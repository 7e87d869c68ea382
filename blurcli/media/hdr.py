"""HDR static metadata: read from the input's first frame, written into the output's bitstream.

A PQ (HDR10) clip carries its mastering display (primaries, white point, luminance range) and its
content light level (MaxCLL/MaxFALL) as SEI messages; players use them to tone-map. PyAV hands
them out as the decoder's raw structs and has no API to attach them to an encoder, but both
libx265 and libx264 take them as parameters (``master-display``/``max-cll``,
``mastering-display``/``cll``), which write the same SEI into the output. An HLG clip (an iPhone's
default) usually has neither; its transfer tag is what matters, and that is copied with the rest
of the colour tags (:mod:`blurcli.media.colour`).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction

import av
from av.sidedata.sidedata import Type

#: AVMasteringDisplayMetadata: 10 AVRationals (R, G, B primaries, white point, min and max
#: luminance), then has_primaries and has_luminance.
_MASTERING = struct.Struct("<20i2i")
#: AVContentLightMetadata: MaxCLL and MaxFALL (cd/m2).
_LIGHT = struct.Struct("<2I")


@dataclass(frozen=True)
class HdrMetadata:
    """Mastering display and content light level of a stream; a field is None when absent.

    Attributes:
        primaries: ((Rx, Ry), (Gx, Gy), (Bx, By)) CIE 1931 chromaticities.
        white_point: (x, y).
        luminance: (min, max) of the mastering display in cd/m2.
        light_level: (MaxCLL, MaxFALL) in cd/m2.
    """

    primaries: tuple[tuple[Fraction, Fraction], ...] | None = None
    white_point: tuple[Fraction, Fraction] | None = None
    luminance: tuple[Fraction, Fraction] | None = None
    light_level: tuple[int, int] | None = None

    def master_display(self) -> str | None:
        """The x264/x265 string: G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min), chromaticity in 1/50000, luminance in 1/10000."""
        if self.primaries is None or self.luminance is None:
            return None
        red, green, blue = ((round(x * 50000), round(y * 50000)) for x, y in self.primaries)
        white = tuple(round(v * 50000) for v in self.white_point)
        low, high = (round(v * 10000) for v in self.luminance)
        return "G({},{})B({},{})R({},{})WP({},{})L({},{})".format(*green, *blue, *red, *white, high, low)

    def encoder_params(self, encoder: str) -> dict[str, str]:
        """``{name: value}`` for libx265's ``x265-params`` or libx264's ``x264-params``."""
        names = {"libx265": ("master-display", "max-cll"), "libx264": ("mastering-display", "cll")}.get(encoder)
        if names is None:
            return {}
        params = {}
        display = self.master_display()
        if display is not None:
            params[names[0]] = display
        if self.light_level is not None:
            params[names[1]] = "{},{}".format(*self.light_level)
        return params


def read_hdr(frame: av.VideoFrame) -> HdrMetadata | None:
    """The HDR metadata attached to a decoded frame, or None when it has none."""
    primaries = white = luminance = light = None
    for item in frame.side_data:
        data = bytes(item)
        if item.type == Type.MASTERING_DISPLAY_METADATA and len(data) >= _MASTERING.size:
            values = _MASTERING.unpack_from(data)
            rationals = [Fraction(values[i], values[i + 1]) if values[i + 1] else Fraction(0) for i in range(0, 20, 2)]
            has_primaries, has_luminance = values[20], values[21]
            if has_primaries:
                primaries = (tuple(rationals[0:2]), tuple(rationals[2:4]), tuple(rationals[4:6]))
                white = tuple(rationals[6:8])
            if has_luminance:
                luminance = (rationals[8], rationals[9])
        elif item.type == Type.CONTENT_LIGHT_LEVEL and len(data) >= _LIGHT.size:
            light = _LIGHT.unpack_from(data)
    if primaries is None and luminance is None and light is None:
        return None
    return HdrMetadata(primaries, white, luminance, light)
