"""ISO 4217 currencies in circulation and their minor-unit exponents (2 unless listed)."""

from __future__ import annotations

_TWO_DECIMAL = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN "
    "BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS "
    "GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR ISK JMD KES KGS KHR KPW KYD KZT LAK "
    "LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK "
    "NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD "
    "SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES WST XCD YER ZAR "
    "ZMW ZWG"
).split()
_ZERO_DECIMAL = "BIF CLP DJF GNF JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split()
_THREE_DECIMAL = "BHD IQD JOD KWD LYD OMR TND".split()

MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(_TWO_DECIMAL, 2),
    **dict.fromkeys(_ZERO_DECIMAL, 0),
    **dict.fromkeys(_THREE_DECIMAL, 3),
}


def is_known_currency(code: str) -> bool:
    return code.upper() in MINOR_UNITS


def format_amount(amount: int, currency: str) -> str:
    """``12345, "USD"`` -> ``"123.45 USD"``: for messages a person reads, never for arithmetic."""
    exponent = MINOR_UNITS.get(currency.upper(), 2)
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(amount), 10**exponent) if exponent else (abs(amount), 0)
    text = f"{units}.{minor:0{exponent}d}" if exponent else str(units)
    return f"{sign}{text} {currency.upper()}"
