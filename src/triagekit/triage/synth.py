"""Synthetic IT tickets with gold triage JSON (``triagekit triage synth``), reproducible by seed.

Each ticket comes from a scenario of a subcategory (what users write, and the one-line English summary an agent
would give it), wrapped in noise: typos, chat abbreviations, Spanish or Spanish/English mix, urgency cues that set
the priority, and one of many instruction phrasings. Category and assignment group follow the schema's
``x-taxonomy``, so the labels are always consistent with the schema.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from triagekit.triage.schema import TriageSchema, load_schema

__all__ = ["SCENARIOS", "INSTRUCTIONS", "synth_tickets", "write_triage_synth"]

# subcategory -> [(request_type, English text, Spanish text, summary)]; {x} slots are filled from SLOTS.
SCENARIOS: dict[str, list[tuple[str, str, str, str]]] = {
    "VPN": [
        (
            "Incident",
            "vpn drops every {n} min since the update, cant work",
            "la vpn se cae cada {n} min desde la actualizacion",
            "VPN disconnects every {n} minutes",
        ),
        (
            "Incident",
            "cannot connect to vpn from home, error {code}",
            "no puedo conectar a la vpn desde casa, error {code}",
            "Cannot connect to VPN, error {code}",
        ),
        (
            "Service Request",
            "please set up vpn access on my new laptop",
            "por favor configurar acceso vpn en mi laptop nueva",
            "Set up VPN access",
        ),
    ],
    "Wi-Fi": [
        (
            "Incident",
            "wifi on floor {floor} keeps disconnecting",
            "el wifi del piso {floor} se desconecta todo el tiempo",
            "Wi-Fi disconnecting on floor {floor}",
        ),
        (
            "Service Request",
            "need the guest wifi password for a visitor",
            "necesito la clave del wifi de invitados para una visita",
            "Guest Wi-Fi access for a visitor",
        ),
    ],
    "Internet": [
        (
            "Incident",
            "internet is super slow in the {site} office",
            "internet muy lento en la oficina de {site}",
            "Slow internet in the {site} office",
        ),
        (
            "Incident",
            "no internet at all in {site}, sites dont load",
            "sin internet en {site}, no cargan las paginas",
            "No internet in {site}",
        ),
    ],
    "Laptop": [
        (
            "Incident",
            "my laptop wont turn on, black screen",
            "mi laptop no prende, pantalla negra",
            "Laptop does not power on",
        ),
        (
            "Incident",
            "laptop battery dies after {n} min",
            "la bateria del portatil dura {n} min",
            "Laptop battery drains in {n} minutes",
        ),
        (
            "Service Request",
            "new laptop for new hire {name} starting monday",
            "laptop nueva para {name} que empieza el lunes",
            "New laptop for new hire {name}",
        ),
    ],
    "Printer": [
        (
            "Incident",
            "printer on floor {floor} is jammed again",
            "la impresora del piso {floor} esta atascada otra vez",
            "Printer jammed on floor {floor}",
        ),
        (
            "Service Request",
            "please add the {site} printer to my pc",
            "agregar la impresora de {site} a mi pc por favor",
            "Add the {site} printer",
        ),
    ],
    "Monitor": [
        (
            "Incident",
            "second monitor flickers and goes black",
            "el segundo monitor parpadea y se apaga",
            "Second monitor flickering",
        ),
        (
            "Service Request",
            "can i get an extra monitor for my desk",
            "puedo tener un monitor extra para mi escritorio",
            "Extra monitor for desk",
        ),
    ],
    "Phone": [
        (
            "Incident",
            "desk phone has no dial tone",
            "el telefono de mi escritorio no tiene tono",
            "Desk phone has no dial tone",
        ),
        (
            "Service Request",
            "need a company mobile phone for {name}",
            "necesito un celular de la empresa para {name}",
            "Company mobile phone for {name}",
        ),
    ],
    "Installation": [
        (
            "Service Request",
            "please install {app} on my computer",
            "por favor instalar {app} en mi computadora",
            "Install {app}",
        ),
        (
            "Incident",
            "{app} install fails with error {code}",
            "la instalacion de {app} falla con error {code}",
            "{app} installation fails with error {code}",
        ),
    ],
    "Crash": [
        (
            "Incident",
            "{app} crashes every time i open a file",
            "{app} se cierra cada vez que abro un archivo",
            "{app} crashes when opening files",
        ),
        ("Incident", "{app} freezes and says not responding", "{app} se congela y dice no responde", "{app} freezes"),
    ],
    "License": [
        (
            "Service Request",
            "need a {app} license for {name}",
            "necesito una licencia de {app} para {name}",
            "{app} license for {name}",
        ),
        ("Incident", "{app} says my license expired", "{app} dice que mi licencia expiro", "{app} license expired"),
    ],
    "Password": [
        (
            "Incident",
            "locked out of my account after password reset",
            "cuenta bloqueada despues de cambiar la contrasena",
            "Account locked after password reset",
        ),
        (
            "Service Request",
            "please reset my password, forgot it",
            "por favor resetear mi contrasena, la olvide",
            "Password reset",
        ),
    ],
    "Permissions": [
        (
            "Service Request",
            "need access to the {share} shared folder",
            "necesito acceso a la carpeta compartida {share}",
            "Access to the {share} shared folder",
        ),
        (
            "Incident",
            "access denied on {share} folder since yesterday",
            "acceso denegado a la carpeta {share} desde ayer",
            "Access denied to the {share} folder",
        ),
    ],
    "New Account": [
        (
            "Service Request",
            "create accounts for new employee {name}",
            "crear cuentas para el nuevo empleado {name}",
            "Accounts for new employee {name}",
        )
    ],
    "Outlook": [
        (
            "Incident",
            "outlook keeps asking for my password",
            "outlook me pide la contrasena todo el rato",
            "Outlook keeps prompting for password",
        ),
        (
            "Incident",
            "outlook not syncing, no new mail since {time}",
            "outlook no sincroniza, sin correos nuevos desde las {time}",
            "Outlook not syncing since {time}",
        ),
    ],
    "Mailbox": [
        (
            "Incident",
            "my mailbox is full, cannot send email",
            "mi buzon esta lleno, no puedo enviar correos",
            "Mailbox full, cannot send",
        ),
        (
            "Service Request",
            "please give me access to the {share} shared mailbox",
            "por favor acceso al buzon compartido {share}",
            "Access to the {share} shared mailbox",
        ),
    ],
    "Phishing": [
        (
            "Incident",
            "got a weird email asking for my bank login, clicked the link",
            "recibi un correo raro pidiendo mi clave del banco, hice click",
            "Clicked a link in a phishing email",
        ),
        (
            "Incident",
            "suspicious email pretending to be the ceo asking for gift cards",
            "correo sospechoso del ceo pidiendo tarjetas de regalo",
            "Suspicious email impersonating the CEO",
        ),
    ],
    "Malware": [
        (
            "Incident",
            "antivirus found a virus on my pc, popups everywhere",
            "el antivirus encontro un virus, ventanas emergentes por todos lados",
            "Malware detected with pop-ups",
        )
    ],
}
SLOTS = {
    "n": ["5", "10", "15", "20", "30"],
    "code": ["809", "0x80070005", "691", "1603", "E42"],
    "floor": ["2", "3", "4", "5", "7"],
    "site": ["Madrid", "Berlin", "Austin", "Lima", "Boston"],
    "name": ["Ana Ruiz", "Tom Becker", "Priya Shah", "Luis Gomez", "Mia Chen"],
    "app": ["Excel", "Teams", "AutoCAD", "Zoom", "SAP", "Photoshop"],
    "share": ["Finance", "HR", "Legal", "Sales"],
    "time": ["9am", "10am", "noon", "2pm"],
}
# Priority cues (English, Spanish); requests without cues are Low, incidents without cues Medium.
CUES = {
    "Critical": (
        ["the whole team is down", "production is down!!", "all users affected"],
        ["todo el equipo esta caido", "produccion caida!!", "afecta a todos"],
    ),
    "High": (["urgent, cant work", "asap pls", "blocking my work"], ["urgente, no puedo trabajar", "urgente porfa"]),
    "Low": (["no rush", "whenever you can", "not urgent"], ["sin prisa", "cuando puedan"]),
}
INSTRUCTIONS = [
    "Triage this ticket as JSON.",
    "Structure this IT ticket.",
    "Fill in the ticket fields for this request.",
    "Classify and summarise this support ticket.",
    "Turn this message into a ticket.",
    "Triage:",
    "Convert to a structured ticket.",
    "What ticket should we log for this?",
    "Clasifica este ticket.",
    "Extract the ticket fields.",
]
_ABBREV = [
    ("please", "pls"),
    ("because", "bc"),
    ("you", "u"),
    ("computer", "pc"),
    ("cannot", "cant"),
    ("minutes", "mins"),
    ("thanks", "thx"),
]


def _typo(text: str, rng: random.Random) -> str:
    words = text.split()
    i = rng.randrange(len(words))
    w = words[i]
    if len(w) > 3:
        j = rng.randrange(1, len(w) - 1)
        words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]  # swap two letters
    return " ".join(words)


def synth_ticket(rng: random.Random, schema: TriageSchema) -> dict[str, Any]:
    """One ticket: ``{instruction, text, language, triage}`` with gold triage valid under ``schema``."""
    taxonomy = schema.taxonomy
    category = rng.choice(sorted(taxonomy))
    sub = rng.choice(taxonomy[category]["subcategories"])
    request_type, en, es, summary = rng.choice(SCENARIOS[sub])
    slots = {k: rng.choice(v) for k, v in SLOTS.items()}
    language = rng.choices(["en", "es", "mix"], weights=[0.6, 0.25, 0.15])[0]
    text = (es if language == "es" else en).format(**slots)
    priority = rng.choices(["Critical", "High", "Low", None], weights=[0.15, 0.25, 0.2, 0.4])[0]
    if priority and (request_type == "Incident" or priority == "Low"):
        en_cues, es_cues = CUES[priority]
        cue = rng.choice(es_cues if language == "es" or (language == "mix" and rng.random() < 0.5) else en_cues)
        text = f"{cue} - {text}" if rng.random() < 0.3 else f"{text}, {cue}"
    else:
        priority = "Low" if request_type == "Service Request" else "Medium"
    if language == "mix":
        text = f"{rng.choice(['hola', 'buenos dias', 'hola equipo'])}, {text}. {rng.choice(['gracias', 'saludos'])}"
    for full, short in _ABBREV:
        if full in text and rng.random() < 0.5:
            text = text.replace(full, short)
    if rng.random() < 0.3:
        text = _typo(text, rng)
    if rng.random() < 0.2:
        text = text.upper() if rng.random() < 0.3 else text.capitalize()
    gold = {
        "summary": summary.format(**slots),
        "category": category,
        "subcategory": sub,
        "priority": priority,
        "assignment_group": taxonomy[category]["group"],
        "request_type": request_type,
    }
    return {
        "instruction": rng.choice(INSTRUCTIONS),
        "text": text,
        "language": language,
        "triage": {k: gold[k] for k in schema.fields if k in gold},
    }


def synth_tickets(n: int, seed: int = 0, schema: TriageSchema | None = None) -> list[dict[str, Any]]:
    """``n`` synthetic tickets (``id``, ``instruction``, ``text``, ``language``, ``triage``)."""
    schema = schema or load_schema()
    if not schema.taxonomy:
        raise ValueError(f"{schema.source}: synthesis needs an 'x-taxonomy' (category -> group, subcategories)")
    missing = {s for t in schema.taxonomy.values() for s in t["subcategories"]} - set(SCENARIOS)
    if missing:
        raise ValueError(f"no synthetic scenarios for subcategories {sorted(missing)}")
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        row = {"id": f"triage-{seed}-{i}", **synth_ticket(rng, schema)}
        errors = schema.validate(row["triage"])
        if errors:  # the schema's enums and the taxonomy disagree: say so instead of writing bad gold labels
            raise ValueError(f"{schema.source}: synthetic gold label invalid under the schema: {errors[0]}")
        rows.append(row)
    return rows


def write_triage_synth(n: int, out: str | Path, seed: int = 0, schema: TriageSchema | None = None) -> Path:
    """Write ``n`` tickets as JSONL (byte-identical for a seed)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        for row in synth_tickets(n, seed, schema):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return out
