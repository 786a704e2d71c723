"""Write container/energy_bench/workload/data/bundled_prompts.jsonl: the offline prompt set.

The prompts are written for this project (topics and sentences below), combined into a mix like
the AI Energy Score text-generation set: encyclopedic passages, web-style text and chat turns, of
varied length. Deterministic: the same file every run. Run: python tools/make_bundled_prompts.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = (
    Path(__file__).resolve().parent.parent
    / "container/energy_bench/workload/data/bundled_prompts.jsonl"
)

TOPICS: dict[str, list[str]] = {
    "glaciers": [
        "Glaciers form where more snow falls each winter than melts each summer.",
        "Over decades the buried snow is compressed into dense blue ice that flows under its own weight.",
        "Valley glaciers carve U-shaped valleys, leaving moraines of rock and gravel where they stop.",
        "Many mountain glaciers have retreated since the nineteenth century, changing the water supply of towns below them.",
    ],
    "bread baking": [
        "Bread rises because yeast ferments sugars and releases carbon dioxide into a network of gluten.",
        "Kneading develops that network, while a long cool proof builds flavour.",
        "A hot oven with steam lets the crust stay soft long enough for the loaf to expand.",
        "Sourdough relies on wild yeasts and lactic acid bacteria kept alive in a starter.",
    ],
    "the printing press": [
        "Movable metal type made it practical to print many identical copies of a text.",
        "Printing shops spread quickly across European cities in the late fifteenth century.",
        "Cheaper books changed how scholars shared results and how ordinary people learned to read.",
        "Standardised spelling and page numbering grew partly out of the needs of printers.",
    ],
    "photosynthesis": [
        "Plants capture light with chlorophyll and use its energy to split water.",
        "The oxygen we breathe is released as a by-product of that reaction.",
        "In a second set of reactions, carbon dioxide is fixed into sugars.",
        "Some plants in hot climates separate these steps in time or space to save water.",
    ],
    "container shipping": [
        "Standard steel containers let cargo move between ships, trains and trucks without being unpacked.",
        "Large ports use cranes that can lift a container every minute or two.",
        "Shipping costs fell sharply once containers replaced loose cargo loaded by hand.",
        "Today a single vessel can carry more than twenty thousand containers.",
    ],
    "the human heart": [
        "The heart has four chambers: two atria that receive blood and two ventricles that pump it out.",
        "Valves keep blood flowing in one direction through each heartbeat.",
        "An electrical signal starting in the sinoatrial node sets the rhythm.",
        "At rest an adult heart beats roughly sixty to eighty times a minute.",
    ],
    "volcanoes": [
        "Volcanoes form where molten rock reaches the surface through cracks in the crust.",
        "Runny basalt lava builds broad shield volcanoes, while sticky lava builds steep cones.",
        "Explosive eruptions happen when gas trapped in thick magma expands suddenly.",
        "Volcanic ash can ground aircraft hundreds of kilometres away.",
    ],
    "public libraries": [
        "Public libraries lend books, but also offer internet access, classes and quiet space to study.",
        "Many were funded by local taxes and private donations in the nineteenth and twentieth centuries.",
        "Librarians catalogue collections so that readers can find material by subject.",
        "Digital lending has added e-books and audiobooks to physical shelves.",
    ],
    "electric motors": [
        "An electric motor turns electrical energy into motion using magnetic fields.",
        "Current through coils creates a field that pushes against permanent magnets or another field.",
        "Brushless motors switch the current electronically instead of with sliding contacts.",
        "Motors in fans, pumps and vehicles account for a large share of electricity use.",
    ],
    "coral reefs": [
        "Coral reefs are built by colonies of tiny animals that secrete limestone skeletons.",
        "Algae living inside the coral supply much of its food through photosynthesis.",
        "When water gets too warm the coral expels the algae and turns white.",
        "Reefs shelter a large fraction of ocean fish species despite covering little of the sea floor.",
    ],
    "chess openings": [
        "Chess openings are sequences of early moves that players study in advance.",
        "Controlling the centre and developing pieces quickly are common goals.",
        "Gambits offer a pawn in exchange for faster development or attack.",
        "Computer analysis has revived some openings once thought to be weak.",
    ],
    "rainwater harvesting": [
        "Rainwater harvesting collects water from roofs into tanks for later use.",
        "Filters remove leaves and grit before the water is stored.",
        "Stored rainwater is often used for gardens, toilets and washing.",
        "In dry regions it can reduce the demand on wells and rivers.",
    ],
    "the metric system": [
        "The metric system defines units in powers of ten, which makes conversion simple.",
        "It was introduced in France at the end of the eighteenth century.",
        "Today its units are defined from fixed physical constants rather than physical objects.",
        "Most countries use it for trade, science and everyday measurement.",
    ],
    "bees": [
        "Honey bees live in colonies with one queen, thousands of workers and seasonal drones.",
        "Workers communicate the location of flowers with a waggle dance.",
        "Bees pollinate many crops while collecting nectar and pollen.",
        "Colonies store honey to survive periods when no flowers bloom.",
    ],
    "solar panels": [
        "Solar panels turn sunlight into electricity with semiconductor cells.",
        "Most cells are made of silicon and produce direct current.",
        "An inverter converts that current to the alternating current used in homes.",
        "Panel prices have fallen steeply over the past two decades.",
    ],
    "tea": [
        "Tea comes from the leaves of a single species of evergreen shrub.",
        "Green, oolong and black teas differ mainly in how long the leaves are allowed to oxidise.",
        "Tea was traded along overland and sea routes for centuries.",
        "The temperature of the water changes how bitter the brewed tea tastes.",
    ],
    "bridges": [
        "Beam bridges rest on supports at each end, while arch bridges push their load outward into the ground.",
        "Suspension bridges hang the deck from cables draped over tall towers.",
        "Engineers must account for wind, traffic, temperature changes and corrosion.",
        "Some long bridges have expansion joints that let the deck grow and shrink with the seasons.",
    ],
    "sleep": [
        "Sleep moves through cycles of light, deep and rapid-eye-movement stages.",
        "Deep sleep helps the body recover, while dreaming occurs mostly in REM sleep.",
        "Adults typically need seven to nine hours a night.",
        "Light from screens late in the evening can delay the release of melatonin.",
    ],
    "maps": [
        "Every flat map distorts the curved surface of the Earth in some way.",
        "Some projections keep angles correct, others keep areas correct, but none keeps both.",
        "Contour lines on topographic maps join points of equal height.",
        "Satellite positioning has made it easy to record precise coordinates.",
    ],
    "composting": [
        "Composting lets microbes break down food scraps and garden waste into humus.",
        "A good heap mixes green material rich in nitrogen with brown material rich in carbon.",
        "Turning the heap adds oxygen and speeds up decomposition.",
        "Finished compost improves soil structure and holds moisture.",
    ],
    "the violin": [
        "The violin has four strings tuned in fifths and is played with a bow strung with horsehair.",
        "Its hollow wooden body amplifies the vibration of the strings.",
        "Makers in northern Italy in the seventeenth and eighteenth centuries are still admired.",
        "Players change pitch by pressing the strings against a fingerboard without frets.",
    ],
    "railways": [
        "Early railways used horses to pull wagons along wooden or iron rails.",
        "Steam locomotives made long-distance rail travel practical in the nineteenth century.",
        "Standard track gauges allow trains to run across networks built by different companies.",
        "Electric high-speed trains now link many cities faster than air travel door to door.",
    ],
    "vaccines": [
        "Vaccines train the immune system to recognise a pathogen without causing the disease.",
        "Some contain weakened or inactivated organisms, others only a protein or genetic instructions.",
        "Widespread vaccination can protect people who cannot be vaccinated themselves.",
        "Smallpox was eradicated through a global vaccination campaign.",
    ],
    "deserts": [
        "Deserts are defined by low rainfall, not by heat: some are very cold.",
        "Plants there store water, grow deep roots or stay dormant until rain falls.",
        "Sand dunes move as wind carries grains up one side and down the other.",
        "Temperatures can swing widely between day and night because dry air holds little heat.",
    ],
    "databases": [
        "A relational database stores data in tables of rows and columns.",
        "Indexes let the database find rows without reading the whole table.",
        "Transactions group changes so that they either all happen or none do.",
        "Backups and replication protect data against hardware failure.",
    ],
}

CHAT_OPENERS = [
    "Hi! Quick question about {t}:",
    "Can you help me understand {t}?",
    "My friend and I were arguing about {t}.",
    "I'm writing a school report on {t}.",
    "Explain {t} to me like I'm twelve.",
]
CHAT_ASKS = [
    "What is the single most important thing to know?",
    "Is this true: {s}",
    "Why does it matter in everyday life?",
    "Give me three surprising facts.",
    "What do most people get wrong about it?",
]
WEB_TITLES = [
    "Everything you need to know about {t}",
    "A beginner's guide to {t}",
    "{T}: five things I learned this year",
    "Why {t} deserves more attention",
]


def _prompts() -> list[dict[str, str]]:
    rng = random.Random(20261129)
    out: list[dict[str, str]] = []
    for topic, facts in TOPICS.items():
        title = topic[0].upper() + topic[1:]
        passage = " ".join(facts)
        out.append({"kind": "encyclopedic", "text": f"{title}. {passage}"})
        out.append({"kind": "encyclopedic", "text": f"{facts[0]} {facts[1]}"})
        out.append({"kind": "question", "text": f"In two sentences, what is {topic}?"})
        out.append(
            {
                "kind": "summary",
                "text": f"Summarise the following text in one sentence.\n\n{passage}",
            }
        )
        web = rng.choice(WEB_TITLES).format(t=topic, T=title)
        order = facts[:]
        rng.shuffle(order)
        out.append({"kind": "web", "text": f"{web}\n\n" + "\n\n".join(order) + "\n\nRead more:"})
        opener = rng.choice(CHAT_OPENERS).format(t=topic)
        ask = rng.choice(CHAT_ASKS).format(s=facts[2].lower().rstrip("."))
        out.append({"kind": "chat", "text": f"{opener} {ask}"})
        out.append({"kind": "chat", "text": f"{facts[3]} Can you tell me more?"})
        out.append(
            {
                "kind": "continuation",
                "text": f"Continue the paragraph: {facts[1]} {facts[2].split(',')[0]}",
            }
        )
        short = facts[rng.randrange(4)].split(" ")[:6]
        out.append({"kind": "short", "text": " ".join(short)})
    names = list(TOPICS)
    for i in range(0, len(names) - 2, 2):
        group = names[i : i + 3]
        body = "\n\n".join(" ".join(TOPICS[t]) for t in group)
        out.append(
            {
                "kind": "long",
                "text": f"Read these notes and write a short essay linking {', '.join(group)}."
                f"\n\n{body}",
            }
        )
    rng.shuffle(out)
    return out


def main() -> None:
    prompts = _prompts()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as f:
        for i, p in enumerate(prompts):
            f.write(json.dumps({"id": i, **p}, ensure_ascii=False) + "\n")
    print(f"{len(prompts)} prompts -> {OUT}")


if __name__ == "__main__":
    main()
