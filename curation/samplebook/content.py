"""Vocabulary for the sample book: chapters, conditions, findings and sentence templates.

Written for this project so the sample book reads like an atlas without quoting any real one.
"""

from __future__ import annotations

# (chapter title, [(section title, diagnosis, [body sites])])
CHAPTERS: list[tuple[str, list[tuple[str, str, list[str]]]]] = [
    (
        "Papulosquamous Disorders",
        [
            ("Psoriasis", "Psoriasis vulgaris", ["extensor knee", "elbow", "scalp", "lower back"]),
            ("Lichen Planus", "Lichen planus", ["flexor wrist", "shin", "buccal mucosa"]),
            ("Pityriasis Rosea", "Pityriasis rosea", ["trunk", "flank", "upper arm"]),
            ("Seborrhoeic Dermatitis", "Seborrheic dermatitis", ["nasolabial fold", "scalp"]),
        ],
    ),
    (
        "Eczematous Dermatoses",
        [
            ("Atopic Dermatitis", "Atopic dermatitis", ["antecubital fossa", "neck", "cheek"]),
            ("Allergic Contact Dermatitis", "Allergic contact dermatitis", ["wrist", "earlobe"]),
            ("Nummular Eczema", "Nummular eczema", ["lower leg", "dorsal hand"]),
            ("Stasis Dermatitis", "Stasis dermatitis", ["medial ankle", "lower leg"]),
        ],
    ),
    (
        "Benign Melanocytic Lesions",
        [
            ("Common Naevi", "Compound nevus", ["back", "shoulder", "abdomen"]),
            ("Blue Naevus", "Blue nevus", ["dorsal hand", "scalp", "buttock"]),
            ("Spitz Naevus", "Spitz nevus", ["cheek", "thigh"]),
            ("Dysplastic Naevi", "Dysplastic nevus", ["upper back", "chest"]),
        ],
    ),
    (
        "Melanoma",
        [
            ("Superficial Spreading Melanoma", "Superficial spreading melanoma", ["calf", "back"]),
            ("Nodular Melanoma", "Nodular melanoma", ["trunk", "thigh"]),
            ("Lentigo Maligna", "Lentigo maligna", ["cheek", "temple", "nose"]),
            ("Acral Lentiginous Melanoma", "Acral lentiginous melanoma", ["sole", "heel"]),
        ],
    ),
    (
        "Keratinocyte Tumours",
        [
            ("Basal Cell Carcinoma", "Basal cell carcinoma", ["nasal ala", "forehead", "ear"]),
            ("Squamous Cell Carcinoma", "Squamous cell carcinoma", ["lower lip", "scalp"]),
            ("Actinic Keratosis", "Actinic keratosis", ["bald scalp", "dorsal hand"]),
            ("Seborrhoeic Keratosis", "Seborrheic keratosis", ["back", "temple"]),
        ],
    ),
    (
        "Bullous Diseases",
        [
            ("Bullous Pemphigoid", "Bullous pemphigoid", ["inner thigh", "forearm"]),
            ("Pemphigus Vulgaris", "Pemphigus vulgaris", ["chest", "oral mucosa"]),
            ("Dermatitis Herpetiformis", "Dermatitis herpetiformis", ["elbow", "buttock"]),
        ],
    ),
    (
        "Infections and Infestations",
        [
            ("Impetigo", "Impetigo", ["perioral skin", "nostril"]),
            ("Tinea Corporis", "Tinea corporis", ["trunk", "thigh"]),
            ("Herpes Zoster", "Herpes zoster", ["chest wall", "forehead"]),
            ("Scabies", "Scabies", ["finger web", "wrist"]),
            ("Molluscum Contagiosum", "Molluscum contagiosum", ["axilla", "eyelid"]),
        ],
    ),
    (
        "Vascular Lesions",
        [
            ("Infantile Haemangioma", "Infantile hemangioma", ["scalp", "cheek"]),
            ("Pyogenic Granuloma", "Pyogenic granuloma", ["finger", "lip"]),
            ("Cherry Angioma", "Cherry angioma", ["trunk", "upper arm"]),
        ],
    ),
    (
        "Disorders of Pigmentation",
        [
            ("Vitiligo", "Vitiligo", ["dorsal hand", "periorbital skin"]),
            ("Melasma", "Melasma", ["forehead", "upper lip"]),
            ("Solar Lentigo", "Solar lentigo", ["dorsal hand", "cheek"]),
        ],
    ),
    (
        "Adnexal and Follicular Disorders",
        [
            ("Acne Vulgaris", "Acne vulgaris", ["cheek", "upper back"]),
            ("Rosacea", "Rosacea", ["central face", "nose"]),
            ("Hidradenitis Suppurativa", "Hidradenitis suppurativa", ["axilla", "groin"]),
        ],
    ),
    (
        "Connective Tissue Diseases",
        [
            ("Discoid Lupus Erythematosus", "Discoid lupus erythematosus", ["ear", "scalp"]),
            ("Dermatomyositis", "Dermatomyositis", ["knuckles", "upper eyelid"]),
            ("Morphoea", "Morphea", ["trunk", "thigh"]),
        ],
    ),
    (
        "Granulomatous Disorders",
        [
            ("Granuloma Annulare", "Granuloma annulare", ["dorsal hand", "ankle"]),
            ("Sarcoidosis", "Sarcoidosis", ["nose", "tattoo"]),
            ("Necrobiosis Lipoidica", "Necrobiosis lipoidica", ["shin"]),
        ],
    ),
]

FINDINGS = {
    "clinical": [
        "well-demarcated erythematous plaques with silvery scale",
        "violaceous, flat-topped polygonal papules",
        "an annular plaque with a raised, scaly border",
        "grouped vesicles on an erythematous base",
        "a pearly nodule with surface telangiectasia",
        "an irregularly pigmented macule with notched borders",
        "tense bullae on urticarial plaques",
        "confluent eroded patches with crusting",
        "a firm, dome-shaped papule with a central dell",
        "ill-defined erythema with lichenification",
        "a hyperkeratotic papule on sun-damaged skin",
        "a friable red nodule that bleeds easily",
    ],
    "dermoscopic": [
        "dotted vessels in a regular distribution over a light red background",
        "an atypical pigment network with irregular dots and globules",
        "white structureless areas and shiny white lines",
        "arborizing vessels and blue-grey ovoid nests",
        "a starburst pattern with peripheral streaks",
        "milia-like cysts and comedo-like openings",
        "a homogeneous steel-blue pattern",
        "a parallel ridge pattern",
        "Wickham striae as white reticular lines",
        "a reticular network that fades towards the periphery",
    ],
    "pathological": [
        "regular acanthosis with confluent parakeratosis",
        "a band-like lymphocytic infiltrate at the dermoepidermal junction",
        "nests of atypical melanocytes at the junction and in the dermis",
        "a subepidermal blister containing eosinophils",
        "suprabasal acantholysis with a row of tombstone basal cells",
        "basaloid islands with peripheral palisading and retraction clefts",
        "spongiosis with a superficial perivascular infiltrate",
        "palisading histiocytes around degenerated collagen",
        "non-caseating epithelioid granulomas in the dermis",
        "lobular proliferation of capillaries beneath an epidermal collarette",
    ],
}

PATH_STAINS = [
    "H&E, \u00d7100",
    "H&E, \u00d7200",
    "H&E, \u00d740",
    "haematoxylin and eosin, \u00d7400",
    "H&E",
]

SENTENCES = [
    "{dx} is a common reason for referral to a dermatology clinic.",
    "The condition affects both sexes and may begin at any age, although onset in early "
    "adulthood is typical.",
    "Lesions most often involve the {site}, but any site can be affected.",
    "Careful inspection under good lighting is the first step in assessment.",
    "The diagnosis is usually clinical; a biopsy is reserved for atypical presentations.",
    "Dermoscopy adds useful detail and reduces the number of unnecessary excisions.",
    "Histological examination confirms the diagnosis when the clinical picture is uncertain.",
    "Patients frequently report itch, which worsens at night and with heat.",
    "The differential diagnosis includes several papulosquamous and infectious disorders.",
    "Treatment is chosen according to the extent of disease and the patient's preferences.",
    "Topical therapy suffices for limited disease, whereas systemic agents are needed for "
    "extensive involvement.",
    "The course is chronic and relapsing, with periods of partial remission.",
    "Koebner phenomenon, the appearance of new lesions at sites of trauma, may be seen.",
    "Family history is positive in a substantial minority of patients.",
    "Secondary infection should be suspected when crusting or pain increases suddenly.",
    "Photographic documentation helps to monitor change over time.",
    "Nail involvement, when present, supports the diagnosis.",
    "Mucosal surfaces should be examined in every patient.",
]

MENTION_TEMPLATES = [
    "The typical appearance is shown in {ref}.",
    "Characteristic features are illustrated in {ref}.",
    "Early lesions are smaller and less scaly (see {ref}).",
    "{Ref} shows the features that distinguish it from its mimics.",
    "The dermoscopic and histological correlates are compared in {ref}.",
    "A representative case is presented in {ref}.",
    "Compare the lesion with the one in {ref}, which is more advanced.",
]

AUTHORS = ["A. N. Example", "B. Placeholder", "C. D. Sample"]

# Captions of vector diagrams (schematics drawn with lines, curves and fills); none names a
# photographic modality, so the gold modality is "other".
VECTOR_CAPTIONS: dict[str, list[str]] = {
    "layers": [
        "Schematic of the skin layers involved in {dx_l}, with the level of the main change",
        "Diagram of the epidermal and dermal compartments in {dx_l}",
        "Layer diagram summarising where {dx_l} arises",
    ],
    "body": [
        "Distribution of {dx_l} over the body, front view; dots mark predilection sites",
        "Body map of the sites most often affected by {dx_l}",
        "Typical distribution pattern of {dx_l}, anterior view",
    ],
}
LAYER_LABELS = ("Epidermis", "Dermis", "Subcutis")
