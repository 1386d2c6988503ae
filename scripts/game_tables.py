#!/usr/bin/python3
"""game_tables.py - write the attribute tables of the twentyq and guesscity
games (share/data/games/derived/*.tsv) from the shipped object and city lists.

  /usr/bin/python3 scripts/game_tables.py [--check]

twenty_questions_attributes.tsv: ArCHer's 157 Twenty Questions objects (the
"archer" list of twenty_questions_objects.json; each object's first name,
lower case, spaces as '_') with its category from the list and attribute
values judged by lathe's developers (common-sense facts: what it is made of,
its usual colour, its size). guess_my_city_attributes.tsv: ArCHer's 91 cities
with attributes read off the list (the country, the name's first, second and
last letters and its length) and the country's continent. Every object must be told
apart by its attributes (the games need it); the script refuses otherwise.
--check: compare with the files instead of writing them (exit 1 on a
difference). Standard library only."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DERIVED = os.path.join(HERE, "..", "share", "data", "games", "derived")

CATEGORY = {
    "Sports": "sports", "Animals": "animals", "Fruits": "fruits", "Vehicles": "vehicles",
    "Clothes": "clothes", "Electronics": "electronics", "Musical Instruments": "instruments",
    "Furniture": "furniture", "Office Supplies": "office", "Vegetables": "vegetables",
    "Art": "art", "Kitchen Tools": "kitchen", "Nature": "nature", "Toys": "toys",
    "Jewelry": "jewelry", "Garden Supplies": "garden", "Tools": "tools",
}

# Usual colour (several or none: "mixed").
COLOR = {
    "red": "apple strawberry tomato",
    "orange": "basketball orange carrot cantaloupe mango",
    "yellow": "tennis_ball banana pineapple corn peach",
    "green": "watermelon grape broccoli spinach peas celery cucumber cactus tree bush forest",
    "brown": "football baseball_bat dog horse bear potato rock table desk dresser bookcase "
             "nightstand violin guitar chair cooking_pot",
    "white": "baseball golf_ball volleyball sheep paper toothpaste refrigerator microwave "
             "mattress pillow plate cup onion cow canvas glue",
    "black": "piano television monitor computer_keyboard camera smartphone printer computer belt boots "
             "shoes pan headphone drill",
    "grey": "elephant rabbit mountain meteorite knife spoon fork whisk scissors key stapler "
            "saw hammer wrench pliers screwdriver shovel rake watering_can",
    "blue": "ocean sea lake river pants jacket",
    "gold": "saxophone trumpet trombone ring necklace bracelet earring pendant locket brooch "
            "watch lion tiger",
}

# attribute -> the objects that have it (value 1; the rest 0)
BINARY = {
    "living": "cat dog horse cow sheep rabbit lion tiger bear elephant tree bush forest cactus",
    "edible": "apple banana orange strawberry grape watermelon pineapple mango cantaloupe peach "
              "carrot potato broccoli tomato onion spinach corn peas celery cucumber",
    "metal": "car truck motorcycle airplane train bus helicopter scooter ship knife spoon fork "
             "cooking_pot pan whisk key scissors stapler hammer screwdriver wrench saw pliers "
             "drill shovel rake watering_can lawn_mower trumpet trombone saxophone flute ring "
             "necklace bracelet earring pendant locket brooch watch meteorite refrigerator "
             "microwave battery hairclip",
    "wood": "baseball_bat chair table bed desk dresser bookcase nightstand pencil chopstick "
            "violin guitar piano harp clarinet tree forest bush paintbrush",
    "fabric": "shirt pants jacket dress skirt socks hat scarf gloves pillow mattress couch "
              "canvas doll kite",
    "electric": "computer smartphone television headphone monitor camera microwave "
                "refrigerator blender computer_keyboard printer calculator battery watch drill",
    "worn": "shirt pants jacket dress skirt belt shoes boots socks hat scarf earring necklace "
            "bracelet ring brooch hairclip pendant watch locket gloves helmet headphone",
    "large": "horse cow bear elephant lion tiger car truck boat airplane train bus helicopter "
             "ship refrigerator piano bed mattress couch bookcase dresser tree mountain forest ocean sea "
             "lake river harp desk table",
    "handheld": "golf_ball tennis_ball baseball apple orange strawberry grape peach mango smartphone "
                "camera pen paper stapler calculator battery toothbrush toothpaste pencil "
                "sharpie scissors key diary paintbrush eraser marker glue knife spoon fork cup "
                "chopstick whisk earring necklace bracelet ring brooch hairclip pendant watch "
                "locket hammer screwdriver wrench pliers rock flute carrot potato onion "
                "tomato peas corn cucumber",
    "wheels": "car truck motorcycle airplane train bus scooter lawn_mower",
    "engine": "car truck motorcycle airplane train bus helicopter ship boat lawn_mower",
    "water": "boat ship ocean sea lake river watering_can",
    "sky": "airplane helicopter kite meteorite",
    "sharp": "knife fork scissors saw cactus pencil drill rake tiger lion",
    "round": "basketball football baseball soccer_ball golf_ball tennis_ball volleyball apple "
             "orange grape watermelon cantaloupe peach tomato onion peas plate bowl ring drum "
             "cooking_pot pan cup",
    "sweet": "apple banana orange strawberry grape watermelon pineapple mango cantaloupe peach "
             "corn carrot",
    "legs": "cat dog horse cow sheep rabbit lion tiger bear elephant chair table bed desk "
            "couch dresser nightstand piano",
    "pair": "pants shoes boots socks earring gloves chopstick scissors pliers headphone",
    "soft": "pillow mattress couch socks scarf doll shirt dress sheep rabbit cat",
    "outdoor": "tree bush mountain forest ocean sea lake river rock meteorite cactus kite "
               "shovel rake lawn_mower watering_can car truck motorcycle boat airplane train bus "
               "helicopter scooter ship horse cow sheep lion tiger bear elephant basketball "
               "football soccer_ball golf_ball volleyball baseball",
    "music": "piano guitar drum violin saxophone flute trumpet clarinet harp trombone "
             "headphone",
    "strings": "piano guitar violin harp tennis_racket",
    "blown": "saxophone flute trumpet clarinet trombone",
    "keys": "piano computer computer_keyboard calculator saxophone clarinet flute",
    "screen": "computer smartphone television monitor camera calculator",
    "writes": "pen pencil sharpie marker paintbrush",
    "cuts": "knife scissors saw lawn_mower",
    "paper": "paper diary calendar puzzle painting kite",
    "hit": "tennis_racket baseball_bat hammer drum",
    "pet": "cat dog rabbit",
    "stripes": "tiger",
    "grows_underground": "carrot potato onion",
    "tree_fruit": "apple orange mango peach",
    "peel": "banana orange pineapple mango watermelon cantaloupe onion",
    "leafy": "spinach celery broccoli",
    "seeds": "watermelon cantaloupe tomato cucumber",
    "head": "hat helmet hairclip",
    "neck": "scarf necklace pendant locket",
    "hand": "ring bracelet watch gloves",
    "feet": "shoes boots socks",
    "legs_worn": "pants skirt dress",
    "sleep": "bed mattress pillow",
    "storage": "dresser bookcase nightstand refrigerator desk",
    "sit": "chair couch",
    "holds_food": "plate bowl cup cooking_pot pan",
    "eating": "spoon fork chopstick knife",
    "teeth": "toothbrush toothpaste",
    "time": "watch calendar diary",
    "plastic": "lego helmet toothbrush computer_keyboard marker sharpie eraser doll puzzle",
    "salt": "ocean sea",
    "moving_water": "river",
    "space": "meteorite",
    "passengers": "car bus train airplane ship boat helicopter",
    "two_wheels": "motorcycle scooter",
    "cargo": "truck ship",
    "wild": "lion tiger bear elephant",
    "farm": "horse cow sheep",
    "hooves": "horse cow sheep",
    "tusks": "elephant",
    "mane": "lion horse",
    "heat": "microwave cooking_pot pan",
    "cold": "refrigerator",
    "mixes": "blender whisk",
    "prints": "printer stapler",
    "opens": "key",
    "power": "battery",
    "photo": "camera",
    "sticky": "glue",
    "erases": "eraser",
    "three_d": "sculpture lego puzzle",
    "hangs": "painting calendar",
    "wall": "painting calendar television monitor",
    "digs": "shovel",
    "gathers": "rake",
    "grass": "lawn_mower",
    "waters": "watering_can",
    "turns": "screwdriver wrench drill",
    "grips": "pliers gloves",
    "bounces": "basketball tennis_ball volleyball soccer_ball",
    "kicked": "soccer_ball football",
    "net": "volleyball tennis_ball tennis_racket basketball",
    "bat_hit": "baseball",
    "club": "golf_ball",
    "oval": "football",
    "heights": "mountain",
    "trees": "forest",
    "small_plant": "bush",
    "desert": "cactus",
    "fresh_water": "lake river",
    "hard": "rock meteorite",
    "percussion": "drum",
    "bow": "violin",
    "slide": "trombone",
    "reed": "saxophone clarinet",
    "plucked": "harp guitar",
    "toy_build": "lego",
    "flies_string": "kite",
    "toy_person": "doll",
    "pieces": "puzzle lego",
    "curved": "banana",
    "rails": "train",
    "public_transport": "bus train",
    "covers_ankle": "boots",
    "channels": "television",
    "work_surface": "desk table",
    "florets": "broccoli",
    "stalks": "celery",
    "huge": "ocean",
    "hangs_from_chain": "pendant locket",
    "holds_picture": "locket",
    "bolts": "wrench",
}


def norm(name):
    return name.split(";")[0].strip().lower().replace(" ", "_")


def write(path, header, rows, check):
    text = "".join("\t".join(r) + "\n" for r in [header] + rows)
    if check:
        with open(path) as f:
            if f.read() != text:
                sys.exit("game_tables: %s differs from what the script writes" % path)
        return
    with open(path, "w") as f:
        f.write(text)


def distinct(rows, what):
    seen, same = {}, []
    for r in rows:
        key = tuple(r[1:])
        if key in seen:
            same.append("%s and %s" % (seen[key], r[0]))
        seen[key] = r[0]
    if same:
        sys.exit("game_tables: %s with the same attributes: %s" % (what, ", ".join(same)))


def objects(check):
    with open(os.path.join(DERIVED, "twenty_questions_objects.json")) as f:
        lists = json.load(f)["archer"]
    names, cat = [], {}
    for c, objs in lists.items():
        for o in objs:
            names.append(norm(o))
            cat[norm(o)] = CATEGORY[c]
    color = {}
    for c, objs in COLOR.items():
        for o in objs.split():
            color[o] = c
    has = {a: set(v.split()) for a, v in BINARY.items()}
    known = set(names)
    for a, s in list(has.items()) + [("color", set(color))]:
        for o in s:
            if o not in known:
                sys.exit("game_tables: %s names an unknown object %s" % (a, o))
    # attributes that tell no object apart are left out
    cols = [a for a in BINARY if 0 < len(has[a] & known) < len(known)]
    rows = [[o, cat[o], color.get(o, "mixed")] + ["1" if o in has[a] else "0" for a in cols]
            for o in names]
    distinct(rows, "objects")
    write(os.path.join(DERIVED, "twenty_questions_attributes.tsv"),
          ["object", "category", "color"] + cols, rows, check)
    return len(rows), len(cols) + 2


CONTINENT = {
    "asia": "South Korea,India,Indonesia,Pakistan,China,Japan,Thailand,Iran,Iraq,Bangladesh,"
            "North Korea,Myanmar,Uzbekistan,Singapore,Turkey",
    "europe": "Russia,UK,Germany,Spain,Italy,Ukraine,France,Romania,Hungary",
    "africa": "Egypt,Morocco,Congo,Ethopia",
    "north_america": "USA,Canada,Cuba",
    "south_america": "Brazil,Colombia,Peru,Chile,Argentina,Ecuador,Venezuela",
    "oceania": "Australia",
}


def cities(check):
    with open(os.path.join(DERIVED, "guess_my_city_cities_archer.json")) as f:
        lst = json.load(f)
    cont = {c: k for k, v in CONTINENT.items() for c in v.split(",")}
    rows = []
    for s in lst:
        city, country = [x.strip() for x in s.split(",")]
        name = city.lower().replace(" ", "_")
        letters = city.lower().replace(" ", "")
        rows.append([name, country.lower().replace(" ", "_"), cont[country], letters[0],
                     letters[1], letters[-1], str(len(letters))])
    distinct(rows, "cities")
    write(os.path.join(DERIVED, "guess_my_city_attributes.tsv"),
          ["city", "country", "continent", "first", "second", "last", "letters"], rows,
          check)
    return len(rows), 6


if __name__ == "__main__":
    check = "--check" in sys.argv[1:]
    n, k = objects(check)
    m, j = cities(check)
    print("twenty_questions_attributes.tsv: %d objects, %d attributes" % (n, k))
    print("guess_my_city_attributes.tsv: %d cities, %d attributes" % (m, j))
