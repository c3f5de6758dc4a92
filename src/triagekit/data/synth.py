"""Synthetic support tickets for demos and tests: templates x slots x paraphrases, with typos and label noise.

Queue is learnable but not trivially (ambiguous tickets, ~3% flipped labels); priority only loosely follows the
urgency cues in the text, as in real data. Same seed, same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["synth_tickets", "write_synth", "QUEUES", "SLOTS"]

# queue -> (share of tickets, P(high, medium, low), hint sentences that point at this queue)
QUEUES: dict[str, tuple[float, tuple[float, float, float], list[str]]] = {
    "Technical Support": (
        0.22,
        (0.35, 0.45, 0.20),
        ["The app also shows {error} from time to time.", "I already cleared the cache and reinstalled {product}."],
    ),
    "Billing and Payments": (
        0.14,
        (0.25, 0.45, 0.30),
        [
            "I also noticed an extra charge of {amount} on my invoice.",
            "Please make sure I am not billed again for this.",
        ],
    ),
    "Customer Service": (
        0.15,
        (0.15, 0.45, 0.40),
        [
            "I have been a customer for years and expected better service.",
            "Please also update my contact details in your system.",
        ],
    ),
    "IT Support": (
        0.12,
        (0.30, 0.45, 0.25),
        [
            "My employee ID is {cust} and I work in the {team} team.",
            "I am working on the company laptop with the standard image.",
        ],
    ),
    "Returns and Exchanges": (
        0.10,
        (0.15, 0.45, 0.40),
        [
            "I still have the original packaging and the receipt.",
            "I would prefer an exchange over a refund if possible.",
        ],
    ),
    "Service Outages and Maintenance": (
        0.10,
        (0.60, 0.30, 0.10),
        ["Other users in our region report the same.", "Your status page does not show any incident."],
    ),
    "Sales and Pre-Sales": (
        0.09,
        (0.10, 0.40, 0.50),
        ["We are also evaluating two other vendors.", "Our budget decision is planned for next quarter."],
    ),
    "Human Resources": (
        0.08,
        (0.15, 0.40, 0.45),
        ["My manager {name2} is in copy.", "I could not find the answer on the intranet."],
    ),
}
TYPES = ("Incident", "Request", "Problem", "Change")
PRIORITIES = ("high", "medium", "low")
LANGUAGES = (("en", 0.80), ("de", 0.12), ("es", 0.08))

# (queue, type, tags, subjects, bodies); bodies are the core of the ticket, openings/closings are added around.
_EN = [
    (
        "Technical Support",
        "Incident",
        ["Bug", "Crash"],
        ["{product} keeps crashing", "{product} crashes on startup", "App crash in {product} after update"],
        [
            "Since the latest update {product} crashes every time I open a project. The log shows {error}. I already "
            "reinstalled it and restarted my computer, but nothing changed.",
            "{product} closes unexpectedly a few seconds after launch. Sometimes I see the message {error} before it quits. "
            "This started after version {version} was installed.",
        ],
    ),
    (
        "Technical Support",
        "Problem",
        ["Bug", "Performance"],
        ["{product} is very slow", "Performance problems with {product}"],
        [
            "For the past week {product} has been extremely slow, loading a simple report takes several minutes. Other "
            "colleagues on the {plan} plan see the same thing.",
            "Syncing in {product} takes forever and often stops with {error}. It worked fine until {date}.",
        ],
    ),
    (
        "Technical Support",
        "Incident",
        ["Login", "Bug"],
        ["Cannot log in to {product}", "Login error: {error}"],
        [
            "When I try to log in to {product} I get {error}. My password is correct and the web version works, only the "
            "desktop app fails.",
            "Two-factor authentication in {product} no longer accepts my codes, so I am locked out of my workspace.",
        ],
    ),
    (
        "Technical Support",
        "Request",
        ["Integration", "Documentation"],
        ["How to connect {product} with {product2}", "Question about the {product} API"],
        [
            "We would like to connect {product} with {product2} to sync our data automatically. Is there an official "
            "integration or API documentation you can point me to?",
            "Which API endpoint should we use to export all records from {product}? The documentation for version "
            "{version} seems outdated.",
        ],
    ),
    (
        "Billing and Payments",
        "Problem",
        ["Billing", "Invoice"],
        ["Charged twice for my subscription", "Duplicate charge on invoice {invoice}"],
        [
            "I was charged {amount} twice this month for my {plan} subscription of {product}. Please check invoice "
            "{invoice} and refund the duplicate payment.",
            "My card statement shows two payments of {amount} on {date}, but I only have one {product} account.",
        ],
    ),
    (
        "Billing and Payments",
        "Request",
        ["Invoice"],
        ["Need a corrected invoice", "Invoice address change"],
        [
            "Could you please issue a new invoice for order {order}? The company name and VAT number on the current one "
            "are wrong.",
            "Our billing address has changed. Please update it and send me the invoices for the last three months again.",
        ],
    ),
    (
        "Billing and Payments",
        "Incident",
        ["Payment"],
        ["Payment failed", "Cannot update my credit card"],
        [
            "My payment of {amount} for the {plan} plan was declined even though the card is valid. I don't want the "
            "account to be suspended.",
            "When I try to update my payment method in the billing portal I get {error} and the card is not saved.",
        ],
    ),
    (
        "Billing and Payments",
        "Change",
        ["Billing", "Subscription"],
        ["Switch to annual billing", "Downgrade my plan"],
        [
            "Please switch our {product} subscription from monthly to annual billing starting next month.",
            "We would like to downgrade from {plan} to Basic at the end of the current billing period. Will the price be "
            "prorated?",
        ],
    ),
    (
        "Customer Service",
        "Request",
        ["Account", "Feedback"],
        ["Question about my account", "Change the email on my account"],
        [
            "I would like to change the email address linked to my account and also update my delivery address. How can I "
            "do that?",
            "I can't find where to change my personal details in the customer portal. Could you help me?",
        ],
    ),
    (
        "Customer Service",
        "Problem",
        ["Delivery", "Account"],
        ["Where is my order {order}?", "Order {order} not delivered"],
        [
            "I ordered a {device} on {date} (order {order}) and the tracking has not updated for a week. Can you tell me "
            "when it will arrive?",
            "My order {order} was marked as delivered, but I never received the package.",
        ],
    ),
    (
        "Customer Service",
        "Request",
        ["Feedback"],
        ["Complaint about response time", "Feedback on your service"],
        [
            "I want to share some feedback: the last time I contacted you it took five days to get an answer. That is too "
            "long for a paying customer.",
            "Just wanted to say thanks to {name2} from your team who helped me last week, excellent service.",
        ],
    ),
    (
        "IT Support",
        "Request",
        ["Access", "Password"],
        [["Password reset for {system}", "Account locked in {system}"], "Access to shared drive"],
        [
            "My account for the {system} was locked after too many login attempts. Please reset my password so I can "
            "continue working.",
            "I need access to the shared drive of the {team} team. My manager {name2} has already approved it.",
        ],
    ),
    (
        "IT Support",
        "Incident",
        ["Hardware"],
        [["My {hardware} is not working", "Broken {hardware}"], "{hardware} in room {room} not connecting"],
        [
            "My company {hardware} stopped working this morning and does not turn on anymore. I need a replacement or "
            "repair.",
            "The {hardware} in meeting room {room} does not connect to my laptop, neither by cable nor wireless.",
        ],
    ),
    (
        "IT Support",
        "Problem",
        ["Network", "VPN"],
        ["VPN connection drops", "No network on {floor} floor"],
        [
            "The VPN connection keeps dropping every few minutes when I work from home. I am using Nimbus VPN on Windows "
            "11.",
            "The Wi-Fi on the {floor} floor has not been working since this morning, several colleagues are affected.",
        ],
    ),
    (
        "IT Support",
        "Change",
        ["Software", "Access"],
        ["Software installation request", "Please install {software}"],
        [
            "Could you install {software} on my workstation? I need it for the new project starting on {date}.",
            "Please add {software} to my laptop and remove the old version, our department is switching next week.",
        ],
    ),
    (
        "Returns and Exchanges",
        "Request",
        ["Return", "Refund"],
        ["Return request for order {order}", "I want to return my {device}"],
        [
            "I would like to return the {device} from order {order}. It does not fit my needs. Please send me a return "
            "label.",
            "How can I return an item I bought on {date}? It was never used and I have the receipt.",
        ],
    ),
    (
        "Returns and Exchanges",
        "Problem",
        ["Damaged", "Exchange"],
        ["Damaged item received", "Wrong item in order {order}"],
        [
            "The {device} I received in order {order} arrived damaged, the screen is cracked. I would like an exchange.",
            "I ordered a black {device} but received a white one. Can I exchange it for the right color?",
        ],
    ),
    (
        "Returns and Exchanges",
        "Request",
        ["Refund", "Return"],
        ["Refund not received", "Status of my refund"],
        [
            "I sent back order {order} two weeks ago, but I have not received my refund of {amount} yet.",
            "Your warehouse confirmed my return on {date}. When will the refund of {amount} be on my card?",
        ],
    ),
    (
        "Service Outages and Maintenance",
        "Incident",
        ["Outage"],
        ["{product} is down", "Service outage - {product} not reachable"],
        [
            "{product} has been completely down for our whole company since {time}. We get {error} on every request.",
            "None of our users can reach {product}. The status page says everything is operational, but we only see "
            "{error}.",
        ],
    ),
    (
        "Service Outages and Maintenance",
        "Request",
        ["Maintenance"],
        ["Question about planned maintenance", "Maintenance window on {date}"],
        [
            "We received a notice about planned maintenance on {date}. How long will {product} be unavailable and will "
            "data sync be affected?",
            "Can the maintenance of {product} on {date} be moved outside our business hours? We run month-end closing.",
        ],
    ),
    (
        "Service Outages and Maintenance",
        "Problem",
        ["Downtime", "Performance"],
        ["Intermittent downtime of {product}", "Repeated outages this week"],
        [
            "{product} has been unavailable several times this week for about 10 to 20 minutes each time. Is there a "
            "known issue in the {region} region?",
            "Since the maintenance on {date}, {product} goes offline every night around {time}.",
        ],
    ),
    (
        "Sales and Pre-Sales",
        "Request",
        ["Pricing", "License"],
        ["Pricing for {n} licenses", "Quote request for {product}"],
        [
            "We are a company of about {n} employees and are interested in {product}. Could you send us a quote for the "
            "{plan} plan including volume discounts?",
            "What would {n} licenses of {product} cost per year? We would pay annually.",
        ],
    ),
    (
        "Sales and Pre-Sales",
        "Request",
        ["Demo"],
        [["Demo request", "Schedule a product demo"], "Trial version of {product}"],
        [
            "I would like to schedule a demo of {product} for our team next week. We are currently comparing several "
            "vendors.",
            "Is it possible to get a trial of {product} for 30 days before we decide? Our IT team wants to test it.",
        ],
    ),
    (
        "Sales and Pre-Sales",
        "Change",
        ["Upgrade", "License"],
        ["Features of the {plan} plan", "Upgrade to {plan}"],
        [
            "What is the difference between the Pro and {plan} plans of {product}? We need SSO and more storage.",
            "We want to upgrade our team of {n} users to the {plan} plan. What are the next steps?",
        ],
    ),
    (
        "Human Resources",
        "Request",
        ["Leave"],
        ["Vacation request", "Question about my leave balance"],
        [
            "I would like to request vacation from {date} for two weeks. Please let me know if you need anything else.",
            "How many vacation days do I have left this year? The HR portal shows a different number than my records.",
        ],
    ),
    (
        "Human Resources",
        "Problem",
        ["Payroll"],
        ["Salary not received", "Error on my payslip"],
        [
            "My salary for {month} has not arrived in my account yet. Could you check whether there was a problem with "
            "the payroll?",
            "My payslip for {month} shows the wrong number of overtime hours, about {n} hours are missing.",
        ],
    ),
    (
        "Human Resources",
        "Change",
        ["Onboarding", "Benefits"],
        ["Onboarding for new employee", "Change of bank details"],
        [
            "A new team member, {name2}, starts on {date}. Please prepare the onboarding documents and the contract.",
            "I have a new bank account. Please update my bank details for the salary payments from {month} on.",
        ],
    ),
]
# Vague tickets that fit several queues; the label is drawn among them, so no model can get them all right.
_AMBIGUOUS = [
    (
        ["Technical Support", "IT Support", "Service Outages and Maintenance"],
        "Problem",
        ["Bug"],
        ["Problem with {product}", "{product} not working"],
        [
            "I have a problem with {product} since {date}. It does not work as expected and I don't know what to do. Can "
            "someone please look into it?"
        ],
    ),
    (
        ["Customer Service", "Billing and Payments", "Returns and Exchanges"],
        "Request",
        ["Account"],
        ["Question about order {order}", "Question about my purchase"],
        [
            "I have a question about my order {order} and the amount of {amount} that was charged. Could you please get "
            "back to me?"
        ],
    ),
    (
        ["Sales and Pre-Sales", "Customer Service", "Billing and Payments"],
        "Request",
        ["Pricing"],
        ["Question about my plan", "Plan and pricing"],
        [
            "We are currently on the {plan} plan of {product} and have some questions about the price and what is "
            "included."
        ],
    ),
    (
        ["Human Resources", "IT Support"],
        "Request",
        ["Onboarding"],
        ["New colleague starting", "Setup for new employee"],
        [
            "A new colleague starts in the {team} team on {date}. What do we need to prepare so that everything is ready "
            "on the first day?"
        ],
    ),
]
_DE = [
    (
        "Technical Support",
        "Incident",
        ["Bug", "Crash"],
        ["{product} stürzt ständig ab", "Fehler in {product}"],
        [
            "Seit dem letzten Update stürzt {product} bei jedem Start ab. Im Protokoll steht {error}. Ich habe das "
            "Programm bereits neu installiert, aber das Problem besteht weiterhin."
        ],
    ),
    (
        "Billing and Payments",
        "Problem",
        ["Billing", "Invoice"],
        ["Doppelte Abbuchung", "Falsche Rechnung {invoice}"],
        [
            "Mir wurden diesen Monat {amount} doppelt für mein {plan}-Abo abgebucht. Bitte prüfen Sie die Rechnung "
            "{invoice} und erstatten Sie den zu viel gezahlten Betrag."
        ],
    ),
    (
        "Customer Service",
        "Request",
        ["Account", "Delivery"],
        ["Frage zu meinem Kundenkonto", "Bestellung {order}"],
        [
            "Ich möchte die E-Mail-Adresse in meinem Kundenkonto ändern. Leider finde ich die Option im Portal nicht.",
            "Meine Bestellung {order} vom {date} ist immer noch nicht angekommen, die Sendungsverfolgung zeigt seit einer "
            "Woche keinen neuen Status.",
        ],
    ),
    (
        "IT Support",
        "Request",
        ["Access", "Hardware"],
        ["Passwort zurücksetzen", "{hardware} defekt"],
        [
            "Mein Konto für das {system} wurde nach mehreren Fehlversuchen gesperrt. Bitte setzen Sie mein Passwort "
            "zurück, damit ich weiterarbeiten kann.",
            "Mein {hardware} funktioniert seit heute Morgen nicht mehr. Ich benötige ein Ersatzgerät.",
        ],
    ),
    (
        "Returns and Exchanges",
        "Request",
        ["Return", "Damaged"],
        ["Rücksendung Bestellung {order}", "Umtausch"],
        [
            "Ich möchte den {device} aus der Bestellung {order} zurücksenden, da er beschädigt angekommen ist. Bitte "
            "schicken Sie mir ein Rücksendeetikett."
        ],
    ),
    (
        "Service Outages and Maintenance",
        "Incident",
        ["Outage"],
        ["{product} nicht erreichbar", "Störung"],
        [
            "{product} ist seit {time} Uhr für unser gesamtes Unternehmen nicht erreichbar. Bei jeder Anfrage erscheint "
            "{error}."
        ],
    ),
    (
        "Sales and Pre-Sales",
        "Request",
        ["Pricing", "Demo"],
        ["Angebot für {n} Lizenzen", "Anfrage zu {product}"],
        [
            "Wir sind ein Unternehmen mit etwa {n} Mitarbeitern und interessieren uns für {product}. Könnten Sie uns ein "
            "Angebot für den {plan}-Tarif schicken?"
        ],
    ),
    (
        "Human Resources",
        "Request",
        ["Leave", "Payroll"],
        ["Urlaubsantrag", "Gehaltsabrechnung {month}"],
        [
            "Ich möchte ab dem {date} zwei Wochen Urlaub beantragen. Bitte teilen Sie mir mit, ob Sie weitere Angaben "
            "benötigen.",
            "Auf meiner Gehaltsabrechnung für {month} fehlen die Überstunden. Können Sie das bitte prüfen?",
        ],
    ),
]
_ES = [
    (
        "Technical Support",
        "Incident",
        ["Bug", "Crash"],
        ["{product} se cierra solo", "Error en {product}"],
        [
            "Desde la última actualización {product} se cierra cada vez que lo abro. El registro muestra {error}. Ya lo "
            "reinstalé pero el problema continúa."
        ],
    ),
    (
        "Billing and Payments",
        "Problem",
        ["Billing", "Invoice"],
        ["Cobro duplicado", "Factura {invoice} incorrecta"],
        [
            "Este mes me cobraron {amount} dos veces por mi suscripción {plan}. Por favor revisen la factura {invoice} y "
            "devuelvan el pago duplicado."
        ],
    ),
    (
        "Customer Service",
        "Request",
        ["Account", "Delivery"],
        ["Consulta sobre mi cuenta", "Pedido {order}"],
        [
            "Quiero cambiar el correo electrónico de mi cuenta pero no encuentro la opción en el portal.",
            "Mi pedido {order} del {date} todavía no ha llegado y el seguimiento no se actualiza desde hace una semana.",
        ],
    ),
    (
        "IT Support",
        "Request",
        ["Access", "Password"],
        ["Restablecer contraseña", "Cuenta bloqueada"],
        [
            "Mi cuenta del {system} se bloqueó después de varios intentos fallidos. Por favor restablezcan mi contraseña "
            "para poder seguir trabajando."
        ],
    ),
    (
        "Returns and Exchanges",
        "Request",
        ["Return", "Refund"],
        ["Devolución del pedido {order}", "Cambio de producto"],
        [
            "Quiero devolver el {device} del pedido {order} porque llegó dañado. Por favor envíenme una etiqueta de "
            "devolución."
        ],
    ),
    (
        "Service Outages and Maintenance",
        "Incident",
        ["Outage"],
        ["{product} no funciona", "Caída del servicio"],
        [
            "{product} no está disponible para toda nuestra empresa desde las {time}. Recibimos {error} en cada "
            "solicitud."
        ],
    ),
    (
        "Sales and Pre-Sales",
        "Request",
        ["Pricing", "License"],
        ["Presupuesto para {n} licencias", "Información sobre {product}"],
        [
            "Somos una empresa de unos {n} empleados y nos interesa {product}. ¿Podrían enviarnos un presupuesto para el "
            "plan {plan}?"
        ],
    ),
    (
        "Human Resources",
        "Request",
        ["Leave", "Payroll"],
        ["Solicitud de vacaciones", "Nómina de {month}"],
        [
            "Quisiera solicitar dos semanas de vacaciones a partir del {date}. Avísenme si necesitan más información.",
            "En mi nómina de {month} faltan las horas extra. ¿Podrían revisarlo, por favor?",
        ],
    ),
]
# per language: openings, closings, urgent cues, mild cues, relaxed cues, fillers, month names
_PHRASES: dict[str, dict[str, list[str]]] = {
    "en": {
        "open": ["Hello,", "Hi team,", "Dear Support,", "Good morning,", "Hi,", "Hello support team,", ""],
        "close": [
            "Thank you in advance.",
            "Thanks for your help.",
            "Best regards,",
            "Kind regards,",
            "Looking forward to your reply.",
            "Thanks!",
            "Cheers,",
        ],
        "urgent": [
            "This is urgent, please help as soon as possible.",
            "Our whole team is blocked by this.",
            "We have a deadline tomorrow, so this is critical.",
            "Please treat this with highest priority.",
            "URGENT: this affects all our customers.",
            "We are losing money every hour this continues.",
        ],
        "mild": [
            "I would appreciate a quick response.",
            "It would be great if you could look into this this week.",
            "Please get back to me soon.",
        ],
        "relaxed": [
            "No rush, whenever you have time.",
            "This is not urgent.",
            "Just for your information.",
            "Whenever you get a chance.",
        ],
        "filler": [
            "I have attached a screenshot.",
            "My customer number is {cust}.",
            "I already checked the FAQ but could not find an answer.",
            "I am using {browser} on {os}.",
            "Please let me know if you need more details.",
            "This happened again today at {time}.",
        ],
        "contact": ["You can reach me at {email} or {phone}.", "My phone number is {phone}."],
        "months": [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ],
    },
    "de": {
        "open": ["Hallo,", "Guten Tag,", "Sehr geehrte Damen und Herren,", "Hallo Support-Team,"],
        "close": ["Vielen Dank im Voraus.", "Mit freundlichen Grüßen", "Beste Grüße", "Danke für Ihre Hilfe."],
        "urgent": ["Das ist dringend, bitte helfen Sie schnell.", "Unser ganzes Team ist blockiert."],
        "mild": ["Ich würde mich über eine baldige Antwort freuen."],
        "relaxed": ["Es ist nicht eilig.", "Keine Eile."],
        "filler": [
            "Ich habe einen Screenshot angehängt.",
            "Meine Kundennummer ist {cust}.",
            "Bitte melden Sie sich, wenn Sie weitere Details brauchen.",
        ],
        "contact": ["Sie erreichen mich unter {phone}."],
        "months": [
            "Januar",
            "Februar",
            "März",
            "April",
            "Mai",
            "Juni",
            "Juli",
            "August",
            "September",
            "Oktober",
            "November",
            "Dezember",
        ],
    },
    "es": {
        "open": ["Hola,", "Buenos días,", "Estimado equipo de soporte,"],
        "close": ["Gracias de antemano.", "Saludos cordiales,", "Un saludo,", "Muchas gracias por su ayuda."],
        "urgent": ["Es urgente, por favor ayúdenme lo antes posible.", "Todo nuestro equipo está bloqueado."],
        "mild": ["Agradecería una respuesta rápida."],
        "relaxed": ["No es urgente.", "Sin prisa."],
        "filler": [
            "He adjuntado una captura de pantalla.",
            "Mi número de cliente es {cust}.",
            "Quedo atento si necesitan más información.",
        ],
        "contact": ["Pueden llamarme al {phone}."],
        "months": [
            "enero",
            "febrero",
            "marzo",
            "abril",
            "mayo",
            "junio",
            "julio",
            "agosto",
            "septiembre",
            "octubre",
            "noviembre",
            "diciembre",
        ],
    },
}
_CODE_SWITCH = ["Danke!", "Vielen Dank.", "Gracias.", "Muchas gracias de antemano.", "Bitte um Rückmeldung."]
# The fillers of every template; public because answer.synth finds a ticket's product and error message in them.
SLOTS = {
    "product": [
        "CloudSync",
        "DataVault",
        "Acme CRM",
        "OfficeSuite",
        "Nimbus VPN",
        "Payroll 360",
        "SecureMail",
        "AnalyticsHub",
        "ShopFront",
        "TeamChat",
    ],
    "error": [
        "Error 503: Service Unavailable",
        "ERR_CONNECTION_RESET",
        "0x80070005 (access denied)",
        "SSL handshake failed",
        "NullReferenceException",
        "'Invalid credentials'",
        "a timeout after 30s",
        "Error 500: Internal Server Error",
        "sync conflict (code 409)",
    ],
    "device": ["laptop", "monitor", "headset", "keyboard", "smartphone", "tablet", "printer", "router"],
    "hardware": ["laptop", "monitor", "docking station", "printer", "headset", "desk phone"],
    "system": ["ERP system", "HR portal", "CRM", "email account", "timesheet tool"],
    "software": ["Visual Studio Code", "Adobe Acrobat", "Tableau", "Python 3.12", "Zoom", "Slack"],
    "team": ["finance", "marketing", "sales", "engineering", "logistics"],
    "plan": ["Basic", "Pro", "Business", "Enterprise"],
    "region": ["EU-West", "US-East", "Asia-Pacific"],
    "floor": ["2nd", "3rd", "4th", "ground"],
    "browser": ["Chrome", "Firefox", "Safari", "Edge"],
    "os": ["Windows 11", "macOS 14", "Ubuntu 22.04"],
    "first": [
        "Anna",
        "Ben",
        "Carlos",
        "Diana",
        "Emre",
        "Fatima",
        "Georg",
        "Hannah",
        "Ivan",
        "Julia",
        "Kenji",
        "Laura",
        "Miguel",
        "Nora",
        "Oliver",
        "Priya",
        "Sofia",
        "Tom",
    ],
    "last": ["Müller", "Smith", "García", "Schmidt", "Johnson", "López", "Weber", "Brown", "Fernández", "Novak"],
}
_PRODUCT_TAGS = {
    "CloudSync": "Sync",
    "DataVault": "Storage",
    "Acme CRM": "CRM",
    "Nimbus VPN": "VPN",
    "Payroll 360": "Payroll",
    "SecureMail": "Email",
    "AnalyticsHub": "Analytics",
    "ShopFront": "E-commerce",
}
_START = datetime(2024, 1, 1)


def _slots(rng: random.Random, lang: str) -> dict[str, Any]:
    s = {k: rng.choice(v) for k, v in SLOTS.items()}
    s["product2"] = rng.choice([p for p in SLOTS["product"] if p != s["product"]])
    s["name2"] = f"{rng.choice(SLOTS['first'])} {rng.choice(SLOTS['last'])}"
    day, month = rng.randint(1, 28), rng.randint(1, 12)
    s["month"] = _PHRASES[lang]["months"][month - 1]
    s["date"] = (
        f"{day:02d}.{month:02d}.2024"
        if lang == "de"
        else f"{day:02d}/{month:02d}/2024"
        if lang == "es"
        else rng.choice([f"{s['month']} {day}", f"2024-{month:02d}-{day:02d}", f"{month}/{day}/2024"])
    )
    s["time"] = f"{rng.randint(0, 23):02d}:{rng.choice(['00', '15', '30', '45'])}"
    value = f"{rng.randint(9, 899)}.{rng.choice(['00', '49', '99'])}"
    s["amount"] = f"{value.replace('.', ',')} €" if lang != "en" else rng.choice(["$", "€", "£"]) + value
    s["order"] = rng.choice(["#", "ORD-"]) + str(rng.randint(10000, 999999))
    s["invoice"] = f"INV-2024-{rng.randint(1000, 9999)}"
    s["cust"] = f"C{rng.randint(100000, 999999)}"
    s["version"] = f"{rng.randint(2, 9)}.{rng.randint(0, 12)}.{rng.randint(0, 9)}"
    s["n"], s["room"] = rng.choice([5, 12, 25, 40, 80, 150, 300]), f"{rng.randint(1, 5)}.{rng.randint(1, 30):02d}"
    s["email"] = f"{s['first'].lower()}.{rng.randint(1, 99)}@example.com"
    s["phone"] = rng.choice(
        [
            f"+49 30 {rng.randint(1000000, 9999999)}",
            f"+1 (555) {rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
            f"+34 91 {rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
        ]
    )
    return s


def _typos(text: str, rng: random.Random, rate: float) -> str:
    words = text.split(" ")
    for i, w in enumerate(words):
        if len(w) >= 4 and w.isalpha() and rng.random() < rate:
            j = rng.randrange(1, len(w) - 1)
            kind = rng.randrange(3)  # swap neighbours, drop a letter, double a letter
            words[i] = (
                w[:j] + w[j + 1] + w[j] + w[j + 2 :]
                if kind == 0
                else w[:j] + w[j + 1 :]
                if kind == 1
                else w[:j] + w[j] + w[j:]
            )
    return " ".join(words)


def _cue(rng: random.Random, priority: str) -> str | None:
    # Cues follow priority only loosely: real customers call trivial things urgent and stay polite in emergencies.
    r = rng.random()
    table = {"high": (0.60, 0.70, 0.72), "medium": (0.08, 0.43, 0.50), "low": (0.03, 0.08, 0.53)}[priority]
    return "urgent" if r < table[0] else "mild" if r < table[1] else "relaxed" if r < table[2] else None


def _ticket(rng: random.Random, templates: dict[str, list], queues: list[str], weights: list[float]) -> dict:
    lang = rng.choices([lg for lg, _ in LANGUAGES], [w for _, w in LANGUAGES])[0]
    queue = rng.choices(queues, weights)[0]
    if lang == "en" and rng.random() < 0.10:
        candidates, ttype, tags, subjects, bodies = rng.choice(_AMBIGUOUS)
        queue = rng.choice(candidates)
    else:
        _, ttype, tags, subjects, bodies = rng.choice([t for t in templates[lang] if t[0] == queue])
    ph, s = _PHRASES[lang], _slots(rng, lang)
    priority = rng.choices(PRIORITIES, QUEUES[queue][1])[0]
    cue = _cue(rng, priority)
    i = rng.randrange(len(bodies))
    # subjects[i] belongs to bodies[i] when the lists align (a list there holds paraphrases); otherwise any fits
    subject = subjects[i] if len(subjects) == len(bodies) else rng.choice(subjects)
    subject = (rng.choice(subject) if isinstance(subject, list) else subject).format(**s)
    parts = [bodies[i]]
    if lang == "en" and rng.random() < 0.30:
        parts.append(rng.choice(QUEUES[queue][2]))
    if lang == "en" and rng.random() < 0.15:  # mentions another queue's topic in passing
        parts.append(rng.choice(QUEUES[rng.choice(queues)][2]))
    if rng.random() < 0.40:
        parts.append(rng.choice(ph["filler"]))
    if cue:
        parts.append(rng.choice(ph[cue]))
    if rng.random() < 0.06:
        parts.append(rng.choice(ph["contact"]))
    if lang == "en" and rng.random() < 0.05:  # code-switching, common in multilingual support inboxes
        parts.append(rng.choice(_CODE_SWITCH))
    while sum(len(p.split()) for p in parts) < 18:  # opening, closing and name bring it to >= 20 words
        parts.append(rng.choice([f for f in ph["filler"] if f not in parts] or ph["filler"]))
    body = " ".join(parts).format(**s)
    if rng.random() < 0.25:
        body = _typos(body, rng, rate=0.05)
    closing = rng.choice(ph["close"])
    opening = rng.choice(ph["open"])
    body = (f"{opening}\n\n" if opening else "") + f"{body}\n\n{closing}\n{s['first']}"
    if cue == "urgent" and rng.random() < 0.3:
        subject = ("URGENT: " if lang == "en" else "Dringend: " if lang == "de" else "Urgente: ") + subject
    if rng.random() < 0.03:  # label noise: a mis-routed ticket nobody corrected
        queue = rng.choice(queues)
    ttype = ttype if rng.random() < 0.85 else rng.choice(TYPES)
    product_tag = _PRODUCT_TAGS.get(s["product"], "General") if s["product"] in subject + body else None
    tag_pool = list(dict.fromkeys(tags + ([product_tag] if product_tag else [])))
    return {
        "subject": subject,
        "body": body,
        "queue": queue,
        "priority": priority,
        "type": ttype,
        "language": lang,
        "tags": rng.sample(tag_pool, rng.randint(1, min(3, len(tag_pool)))),
    }


def synth_tickets(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` synthetic tickets: id, subject, body, queue, priority, type, language, created_at (ISO), tags.

    Args:
        n: number of tickets.
        seed: random seed; the same seed gives identical tickets.
    """
    rng = random.Random(seed)
    templates = {"en": _EN, "de": _DE, "es": _ES}
    queues = list(QUEUES)
    weights = [QUEUES[q][0] for q in queues]
    times = sorted(rng.randrange(365 * 24 * 3600) for _ in range(n))  # ids follow time, like a real ticket system
    tickets = []
    for i, offset in enumerate(times):
        t = _ticket(rng, templates, queues, weights)
        created = (_START + timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%SZ")
        tickets.append(
            {
                "id": f"TCK-{i + 1:06d}",
                **{k: t[k] for k in ("subject", "body", "queue", "priority", "type", "language")},
                "created_at": created,
                "tags": t["tags"],
            }
        )
    return tickets


def write_synth(n: int, out: str | Path, seed: int = 0) -> Path:
    """Write :func:`synth_tickets` to ``out``: ``.jsonl``/``.ndjson``, ``.json`` or ``.csv``/``.tsv`` (tags joined
    with ``|``), chosen by suffix.

    Args:
        n: number of tickets.
        out: output path.
        seed: random seed.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    tickets = synth_tickets(n, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".jsonl", ".ndjson"):
        text = "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in tickets)
    elif suffix == ".json":
        text = json.dumps(tickets, ensure_ascii=False, indent=1) + "\n"
    elif suffix in (".csv", ".tsv"):
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf,
            fieldnames=list(tickets[0]) if tickets else ["id"],
            lineterminator="\n",
            delimiter="\t" if suffix == ".tsv" else ",",
        )
        writer.writeheader()
        writer.writerows({**t, "tags": "|".join(t["tags"])} for t in tickets)
        text = buf.getvalue()
    else:
        raise ValueError(f"unsupported output format {suffix!r} for {out}; use .jsonl, .json, .csv or .tsv")
    out.write_text(text, encoding="utf-8")
    return out
