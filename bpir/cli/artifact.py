"""stub."""


def add(sub, common) -> None:
    pass
